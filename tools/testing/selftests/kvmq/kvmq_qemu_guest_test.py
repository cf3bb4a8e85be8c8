#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""kvmq_qemu_guest_test - the guest driver's checks in Linux guests (TAP).

Runs in the test host with kvmq loaded, as kvmq_qemu_test.py, whose
helpers and environment it uses: tools/kvmq/test/kvmq_guest_test (every
ioctl's errors, mmap, poll, io_uring sends and receives) in a guest whose
device has rings, then in one with rings=off.  A program of its own, so
that each program stays within its timeout.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvmq_qemu_test as qt  # noqa: E402

if __name__ == "__main__":
    sys.exit(qt.main([qt.test_guest_ioctls, qt.test_guest_ioctls_no_rings]))
