#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""kvmq_qemu_relay_test - the relay baseline of the pipeline (TAP).

Runs in the test host with kvmq loaded, as kvmq_qemu_events_test.py, whose
helpers and environment it uses: the relay baseline of kvmq_pipeline.py
compare (read -> decode -> play through the QEMUs, over virtio-serial),
traced, with the 8 MiB WAV; only the npt=1 lane runs it.  A program of its
own, so that each program stays within its timeout.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvmq_qemu_events_test as ev  # noqa: E402

if __name__ == "__main__":
    sys.exit(ev.main([ev.test_pipeline_relay]))
