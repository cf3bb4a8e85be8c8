#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""kvmq_qemu_events_test - the pipeline of Linux guests with guests coming
and going (TAP).

Runs in the test host with kvmq loaded, as kvmq_qemu_test.py (whose
helpers and environment it uses: KVMQ_QEMU, KVMQ_GUEST_KERNEL, KVMQ_TOP,
KVMQ_PIPE_DIR, KVMQ_PIPE_EVENT_DIR, KVMQ_QEMU_TESTS), the read -> decode
-> play pipeline of tools/kvmq/kvmq_pipeline.py with each event
(Documentation/qemu.rst, section 6), with the 16 MiB WAV: decode's QEMU
replaced by a new one with the same identity, play's QEMU killed,
decode's grant revoked, and checks the documented outcome of each.  The
three runs boot ten guests, 4 to 6 minutes on a two-core build machine: a
program of their own, so that each program stays within its timeout, and
only the npt=1 lane runs it (KVMQ_NPT).  The relay baseline is
kvmq_qemu_relay_test.py's.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvmq_qemu_test as qt  # noqa: E402

EVENT_LANE = "1"


def check(ok, name, why):
    """A TAP result that says why only when it fails."""
    qt.tap(ok, name, "" if ok else why)


def pipe_event(name, event):
    """The pipeline with an event, or None after a failure."""
    d = qt.pipe_dir(name, True)
    if not d:
        return None
    import kvmq_pipeline
    sys.stdout.flush()
    r = kvmq_pipeline.pipeline(d, event=event, quiet=True)
    check(not r.get("failed") and bool(r.get("timeline")),
          "%s: the event came mid-stream and the run ended" % name,
          r.get("failed") or "")
    return r


def pipe_common(name, r):
    """What every event leaves behind: nothing."""
    check(r["pool_after"] == r["pool_before"],
          "%s: host pool back to %d pages" % (name, r["pool_before"]),
          "%d pages" % r["pool_after"])
    check(r["host_log"] == [], "%s: no warning in the host's kernel log" %
          name, "%s" % r["host_log"])


def test_pipeline_reboot():
    """decode's QEMU replaced mid-stream: read waits, the rest flows."""
    name = "pipeline reboot-decode"
    r = pipe_event(name, "reboot-decode")
    if not r:
        return
    c = r["codes"]
    check(r["read_refused"] > 0 and r["read_err"] in
          ("No such file or directory", "Permission denied"),
          "%s: read's sends refused (ENOENT, then EACCES until the grant) "
          "while decode was away, and sent again" % name,
          "%d refused, last %s" % (r["read_refused"], r["read_err"]))
    check(c["read"] == "0" and c["decode"] == "0" and c["play"] == "0",
          "%s: read, the new decode and play end their streams" % name,
          "exit status %s" % c)
    check(r["sent_blocks"] == r["blocks"] and r["delivered"] > 0 and
          r["verified"] == r["delivered"],
          "%s: read sent every block; each block play got is the "
          "reference's, in order" % name,
          "%d sent, %d delivered, %d verified" %
          (r["sent_blocks"], r["delivered"], r["verified"]))
    check(r["lost"] <= r["depth"] + r["ring"] + 1,
          "%s: lost at most decode's queue, its receive ring and the block "
          "it held" % name, "%d lost, depth %d, ring %d" %
          (r["lost"], r["depth"], r["ring"]))
    pipe_common(name, r)


def test_pipeline_kill():
    """play's QEMU SIGKILLed mid-stream: decode stops with ENOENT."""
    name = "pipeline kill-play"
    r = pipe_event(name, "kill-play")
    if not r:
        return
    check(r["codes"]["decode"] == "1" and
          any("send: No such file or directory" in x
              for x in r["decode_log"]),
          "%s: decode's send fails with ENOENT" % name,
          "exit %s: %s" % (r["codes"]["decode"], r["decode_log"]))
    check(r["delivered"] > 0 and r["verified"] == r["delivered"],
          "%s: what play got before it was killed is the reference's" % name,
          "%d delivered, %d verified" % (r["delivered"], r["verified"]))
    pipe_common(name, r)


def test_pipeline_revoke():
    """decode's grant revoked mid-stream: EACCES, play keeps the rest."""
    name = "pipeline revoke"
    r = pipe_event(name, "revoke")
    if not r:
        return
    check(r["codes"]["decode"] == "1" and
          any("send: Permission denied" in x for x in r["decode_log"]),
          "%s: decode's next send fails with EACCES" % name,
          "exit %s: %s" % (r["codes"]["decode"], r["decode_log"]))
    check(r["codes"]["play"] == "0" and r["delivered"] > 1 and
          r["delivered_idx"] == list(range(r["delivered"])) and
          r["verified"] == r["delivered"],
          "%s: play got the blocks queued before the revoke, each the "
          "reference's, in order" % name,
          "exit %s, blocks %s" % (r["codes"]["play"], r["delivered_idx"]))
    check(r["lost"] <= r["depth"] + r["ring"] + 1,
          "%s: not delivered: at most decode's queue, its receive ring and "
          "the block it held" % name, "%d, depth %d, ring %d" %
          (r["lost"], r["depth"], r["ring"]))
    pipe_common(name, r)


def test_pipeline_relay():
    """The relay baseline of kvmq_pipeline.py compare (through the QEMUs,
    over virtio-serial), traced: the stream arrives, and the breakdown of
    each vCPU thread's time covers the time traced."""
    name = "pipeline relay"
    d = qt.pipe_dir(name)
    if not d:
        return
    import kvmq_pipeline
    sys.stdout.flush()
    r = kvmq_pipeline.pipeline(d, quiet=True, transport="relay", trace=True)
    check(r["ok"] and r["whole"] and r["pages_moved"] == 0,
          "%s: play got the reference exactly through the VMMs, kvmq moved "
          "nothing" % name, r.get("failed") or
          "exit status %s, whole %s, moved %s" %
          (r.get("codes"), r.get("whole"), r.get("pages_moved")))
    t = r.get("trace", {"guests": {}})
    cover = {n: sum(v for k, v in g["time"].items() if k != "kvmq")
             for n, g in t["guests"].items()}
    check(sorted(cover) == ["decode", "play", "read"] and
          all(g["time"].get("guest", 0) > 0 for g in t["guests"].values())
          and all(abs(c - t["wall"]) <= 0.02 * t["wall"] + 0.05
                  for c in cover.values()) and not t["overrun"],
          "%s: the trace splits each vCPU thread's %.1f s, time in the "
          "guest included" % (name, t.get("wall", 0)),
          "%s, lost %s" % (cover, t.get("overrun")))


def main(tests=None):
    """Run `tests` (by default this program's) in the npt=1 lane, print
    TAP; the exit status: 0 passed, 1 failed, 4 skipped."""
    for v in ("KVMQ_QEMU", "KVMQ_GUEST_KERNEL"):
        if not os.environ.get(v):
            print("1..0 # SKIP %s not set (scripts/run-tests.sh sets it)" %
                  v)
            return 4
    if os.environ.get("KVMQ_NPT", EVENT_LANE) != EVENT_LANE:
        print("1..0 # SKIP the npt=%s lane runs these" % EVENT_LANE)
        return 4
    if os.path.exists("/proc/lockdep_stats") and \
            not os.environ.get("KVMQ_QEMU_DEBUG"):
        print("1..0 # SKIP a debug kernel: set KVMQ_QEMU_DEBUG=1 to run "
              "the Linux guests on it")
        return 4
    if not os.path.exists("/dev/kvmq") or not os.path.exists("/dev/kvm"):
        print("1..0 # SKIP needs /dev/kvm and kvmq loaded")
        return 4
    tests = tests or [test_pipeline_reboot, test_pipeline_kill,
                      test_pipeline_revoke]
    only = os.environ.get("KVMQ_QEMU_TESTS", "").split()
    if only:
        tests = [t for t in tests if t.__name__[5:] in only]
    for t in tests:
        try:
            t()
        except Exception as e:          # report, go on
            qt.tap(False, "%s: %s: %s" % (t.__name__, type(e).__name__, e))
    print("1..%d" % len(qt.results))
    return 0 if all(qt.results) else 1


if __name__ == "__main__":
    sys.exit(main())
