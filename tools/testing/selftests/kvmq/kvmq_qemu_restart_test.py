#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""kvmq_qemu_restart_test - a receiving guest killed, and reset (TAP).

Runs in the test host with kvmq loaded, as kvmq_qemu_test.py, whose
helpers and environment it uses: its "kill" (the receiver's QEMU
SIGKILLed mid-stream, a new QEMU with the same identity) and "reset"
(system_reset mid-stream) tests.  A program of its own, so that each
program stays within its timeout.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvmq_qemu_test as qt  # noqa: E402

if __name__ == "__main__":
    sys.exit(qt.main([qt.test_qemu_killed, qt.test_reset]))
