#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""kvmq_qemu_pipeline_test - the pipeline of three Linux guests (TAP).

Runs in the test host with kvmq loaded, as kvmq_qemu_test.py, whose
helpers and environment it uses: tools/kvmq/kvmq_pipeline.py with the
8 MiB WAV (KVMQ_PIPE_DIR), read -> decode -> play, verified.  A program
of its own, so that each program stays within its timeout.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvmq_qemu_test as qt  # noqa: E402

if __name__ == "__main__":
    sys.exit(qt.main([qt.test_pipeline]))
