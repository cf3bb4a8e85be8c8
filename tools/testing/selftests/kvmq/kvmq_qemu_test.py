#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""kvmq_qemu_test - Linux guests under QEMU's kvmq-pci device (TAP).

Runs in the test host with kvmq loaded.  Boots L2 Linux guests (Debian's
kernel, the guest initramfs of scripts/mkguest-initramfs.sh with the
kvmq_guest driver and the kvmq CLI) under the QEMU of scripts/qemu.sh, in
one kvmq group, and checks what the guests and QMP see.

Environment (scripts/run-tests.sh sets them):
  KVMQ_QEMU          the patched qemu-system-x86_64
  KVMQ_GUEST_KERNEL  the guests' kernel
  KVMQ_TOP           the kvmq tree (scripts/, guest/, tools/kvmq/)
  KVMQ_PIPE_DIR      a WAV and its reference (kvmq_pipeline.py prepare)
  KVMQ_PIPE_EVENT_DIR  the same for kvmq_qemu_events_test.py (16 MiB)
  KVMQ_QEMU_TESTS    run only these tests (names without test_, spaces)
"""

import hashlib
import os
import random
import shutil
import subprocess
import sys
import time

top = os.environ.get("KVMQ_TOP",
                     os.path.abspath(os.path.join(os.path.dirname(__file__),
                                                  "../../../..")))
sys.path.insert(0, os.path.join(top, "tools/kvmq"))
import kvmq_host  # noqa: E402

BOOT = 300              # seconds a guest may take to boot and finish
results = []


def tap(ok, name, why=""):
    results.append(ok)
    print("%sok %d %s%s" % ("" if ok else "not ", len(results), name,
                            " # " + why if why else ""), flush=True)


def diag(msg):
    for line in str(msg).splitlines():
        print("# " + line, flush=True)


def dump(g):
    diag("---- console of %s" % g.name)
    diag(g.console()[-3000:])
    out = g.qemu_output()
    if out:
        diag("---- qemu of %s" % g.name)
        diag(out[-2000:])


class Env:
    def __init__(self):
        self.qemu = os.environ["KVMQ_QEMU"]
        self.kernel = os.environ["KVMQ_GUEST_KERNEL"]
        self.dir = kvmq_host.workdir()
        self.guests = []

    def initrd(self, name, files):
        """A guest initramfs with `files` ({dest: bytes or str})."""
        paths = []
        for dest, data in files.items():
            src = os.path.join(self.dir, name + "." + os.path.basename(dest))
            with open(src, "wb") as f:
                f.write(data.encode() if isinstance(data, str) else data)
            os.chmod(src, 0o755)
            paths.append("%s:%s" % (src, dest))
        out = os.path.join(self.dir, name + ".cpio.gz")
        subprocess.run([os.path.join(top, "scripts/mkguest-initramfs.sh"),
                        out] + paths, check=True, stdout=subprocess.DEVNULL)
        return out

    def guest(self, name, identity, group, script, files=None, **kw):
        files = dict(files or {})
        files["/root/run.sh"] = script
        g = kvmq_host.Guest(self.qemu, self.kernel,
                            self.initrd(name, files), name, identity,
                            group, "sh /root/run.sh", self.dir, **kw)
        self.guests.append(g)
        return g

    def cleanup(self):
        for g in self.guests:
            g.kill()
        self.guests = []


# Guest side: wait for the peer the VMM posted, then act.
WAIT_PEER = """
i=0
until kvmq peers | grep -q "^%s "; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo no peer %s; exit 1; }
	sleep 0.1
done
"""

SENDER = WAIT_PEER % ("recv", "recv") + """
for k in bytes pages blocks; do
	kvmq send --$k recv /root/$k.dat || { echo SEND-FAIL $k; exit 1; }
done
# Queue 2 of the receiver: no grant.
kvmq send --bytes recv:2 /root/bytes.dat 2>/tmp/err
echo "NOGRANT: $? $(cat /tmp/err)"
kvmq info | sed 's/^/INFO /'
echo DONE
sleep 600
"""

RECEIVER = WAIT_PEER % ("send", "send") + """
for k in bytes pages blocks; do
	kvmq recv -o /tmp/$k || { echo RECV-FAIL $k; exit 1; }
	echo "SUM $k $(sha256sum /tmp/$k | cut -d' ' -f1)"
done
kvmq info | sed 's/^/INFO /'
echo DONE
sleep 600
"""


def data(seed, size):
    return random.Random(seed).randbytes(size)


def info_of(g):
    """The guest's `kvmq info` as a dict (lines "INFO key: value")."""
    d = {}
    for line in g.console().splitlines():
        if line.startswith("INFO ") and ":" in line:
            k, v = line[5:].split(":", 1)
            d[k.strip()] = v.strip()
    return d


def test_transfer(env):
    """A file of each kind between two guests, identities posted by QMP."""
    pool0 = kvmq_host.debugfs_stat("aperture_pages")
    group = kvmq_host.create_group()
    files = {
        "bytes": data(1, 100 * 1024 + 17),
        "pages": data(2, 3 * 1024 * 1024 + 4097),
        "blocks": data(3, 5 * 1024 * 1024 + 123),
    }
    try:
        a = env.guest("send", 1, group, SENDER,
                      {"/root/%s.dat" % k: v for k, v in files.items()})
        b = env.guest("recv", 2, group, RECEIVER, queues=2)
    finally:
        os.close(group)
    a.post("peer recv 2\n")
    b.post("peer send 1\n")
    b.grant(1, queue=1)
    a.start()
    b.start()

    done_a = a.wait_line("DONE", BOOT) is not None
    done_b = b.wait_line("DONE", BOOT) is not None
    tap(done_a and done_b, "transfer: both guests finished")
    if not (done_a and done_b):
        dump(a)
        dump(b)
    for k, v in files.items():
        want = hashlib.sha256(v).hexdigest()
        got = b.wait_line("SUM %s " % k, 1)
        tap(got == want, "transfer: %s, %d bytes, byte for byte" %
            (k, len(v)), "" if got == want else "got %s" % got)

    nogrant = a.wait_line("NOGRANT:", 1) or ""
    tap(nogrant.startswith("1 ") and "Permission denied" in nogrant,
        "transfer: a queue without a grant refuses with EACCES")
    if not nogrant.startswith("1 "):
        diag("NOGRANT: %s" % nogrant)

    qa, qb = a.query(), b.query()
    diag("query-kvmq send: %s" % qa)
    diag("query-kvmq recv: %s" % qb)
    sa, sb = qa["stats"], qb["stats"]
    # Each kind: data messages, then one empty end marker.
    # Each guest also received the one post that named its peer.
    ok = (sa["sent"] + 1 == sb["received"] and sa["sent"] > 3 and
          sa["received"] == 1 and
          sa["sent-bytes"] == sum(len(v) for v in files.values()) and
          sb["received-bytes"] == sa["sent-bytes"] + len("peer send 1\n") and
          qa["identity"] == 1 and qb["identity"] == 2 and
          [q["length"] for q in qb["queues"]] == [0, 0, 0] and
          [q["senders"] for q in qb["queues"]] == [0, 1, 0] and
          sa["refused"] == 0 and sb["notified"] > 0 and
          sa["pages-moved"] >= (3 * 1024 * 1024 + 4097) // 4096 +
          (5 * 1024 * 1024 + 123) // 4096)
    tap(ok, "transfer: query-kvmq matches what the guests did")
    # The guests gave back every page they held.
    ia, ib = info_of(a), info_of(b)
    ok = ia.get("held") == "0" and ib.get("held") == "0" and \
        qa["held"] == 0 and qb["held"] == 0 and qb["queued"] == 0
    tap(ok, "transfer: nothing held in the guests or the apertures",
        "" if ok else "guest held %s/%s" % (ia.get("held"), ib.get("held")))

    env.cleanup()
    pool = kvmq_host.debugfs_stat("aperture_pages")
    tap(pool == pool0, "transfer: host pool back to %d pages after QEMU "
        "exits" % pool0, "" if pool == pool0 else "%d pages" % pool)


def wait_until(pred, timeout, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


# A stream of BIG (kvmq send's options: STREAMS); then, once the VMM names
# the peer "again", a second, small file.
STREAMER = WAIT_PEER % ("recv", "recv") + """
kvmq send %s recv /root/big.dat 2>/tmp/err
echo "FIRST: $? $(cat /tmp/err)"
i=0
until kvmq peers | grep -q "^again "; do
	i=$((i + 1)); [ $i -lt 1200 ] || { echo no go; exit 1; }
	sleep 0.1
done
kvmq send --pages recv /root/small.dat 2>/tmp/err
echo "SECOND: $? $(cat /tmp/err)"
echo DONE
sleep 600
"""

# The stream's receiver takes some messages (STREAMS) and stops until the
# VMM names the peer "resume": meanwhile its receive ring and its queue fill
# up and the sender blocks, so that what the test does next (revoke, kill,
# reset) happens mid-stream however fast the stream ran.  After a reset
# the new boot does the same again.  RECVD has the SHA-256 of all this
# boot received.
STREAM_RECEIVER = WAIT_PEER % ("send", "send") + """
kvmq recv --count %d -o /tmp/out
echo "PAUSED: $?"
until kvmq peers | grep -q "^resume "; do sleep 0.1; done
kvmq recv -o /tmp/out2
echo "RECVD: $? $(cat /tmp/out /tmp/out2 | sha256sum | cut -d' ' -f1)"
echo DONE
sleep 600
"""

# A receiver of one file.
FILE_RECEIVER = WAIT_PEER % ("send", "send") + """
kvmq recv -o /tmp/out
echo "RECVD: $? $(sha256sum /tmp/out | cut -d' ' -f1)"
echo DONE
sleep 600
"""

SMALL = data(5, 64 * 1024 + 3)


BIG = data(4, 800 * 2048)
# kind: kvmq send's options, bytes per message, messages before the pause:
# 800 inline messages, or 100 messages of 4 pages.
STREAMS = {"bytes": ("--bytes", 2048, 100),
           "pages": ("--pages -n 4", 4 * 4096, 40)}


def stream_pair(env, group, depth=8, reboot=False, kind="bytes"):
    opts, _, pause = STREAMS[kind]
    a = env.guest("send", 1, group, STREAMER % opts,
                  {"/root/big.dat": BIG, "/root/small.dat": SMALL})
    b = env.guest("recv", 2, group, STREAM_RECEIVER % pause, depth=depth,
                  reboot=reboot)
    a.post("peer recv 2\n")
    b.post("peer send 1\n")
    b.grant(1)
    a.start()
    b.start()
    return a, b


def stream_paused(a, b, what, depth=8):
    """TAP: the receiver took its first messages and stopped, its queue
    full behind it (the sender blocked).  False after a dump on failure."""
    paused = b.wait_line("PAUSED:", BOOT)
    ok = paused == "0" and \
        wait_until(lambda: b.query()["queues"][1]["length"] == depth, 120)
    tap(ok, "%s: the stream flows; the receiver pauses, its queue full" %
        what, "" if ok else "PAUSED %r, queue %s" %
        (paused, b.query()["queues"][1]))
    if not ok:
        dump(a)
        dump(b)
    return ok


def test_revoke(env):
    """A grant revoked mid-stream: EACCES, then granted again, it works."""
    group = kvmq_host.create_group()
    try:
        a, b = stream_pair(env, group)
    finally:
        os.close(group)
    if not stream_paused(a, b, "revoke"):
        return
    b.revoke(1)
    t0 = time.monotonic()
    first = a.wait_line("FIRST:", 120) or ""
    tap(first.startswith("1 ") and "Permission denied" in first,
        "revoke: the sender's next send fails with EACCES",
        "" if first.startswith("1 ") else "got %r" % first)
    if not first.startswith("1 "):
        diag("after %.0f s: %s %s" % (time.monotonic() - t0, a.query(),
                                      b.query()))
        dump(a)
        dump(b)
    # The messages queued before the revoke are delivered; then nothing.
    b.post("peer resume 9\n")
    drained = wait_until(lambda: b.query()["queues"][1]["length"] == 0, 120)
    got = b.received()
    time.sleep(1)
    tap(drained and b.received() == got and
        b.query()["queues"][1]["senders"] == 0,
        "revoke: nothing arrives after it")
    b.grant(1)
    a.post("peer again 9\n")
    second = a.wait_line("SECOND:", 120) or ""
    tap(second.startswith("0"), "revoke: granted again, the sender sends",
        "" if second.startswith("0") else "got %r" % second)
    recvd = b.wait_line("RECVD:", 120) or ""
    tap(recvd.startswith("0 "), "revoke: the receiver got the end of it")


def test_qemu_killed(env):
    """The receiver's QEMU SIGKILLed mid-stream; a new one takes its place."""
    pool0 = kvmq_host.debugfs_stat("aperture_pages")
    group = kvmq_host.create_group()
    try:
        a, b = stream_pair(env, group)
        if not stream_paused(a, b, "kill"):
            return
        b.kill()
        first = a.wait_line("FIRST:", 120) or ""
        tap(first.startswith("1 ") and "No such file" in first,
            "kill: the sender's next send fails with ENOENT",
            "" if first.startswith("1 ") else "got %r" % first)
        # The same identity again, in a new QEMU.
        c = env.guest("recv2", 2, group, FILE_RECEIVER)
    finally:
        os.close(group)
    c.post("peer send 1\n")
    c.grant(1)
    c.start()
    a.post("peer again 9\n")
    second = a.wait_line("SECOND:", BOOT) or ""
    tap(second.startswith("0"), "kill: the sender sends to the new VM",
        "" if second.startswith("0") else "got %r" % second)
    recvd = c.wait_line("RECVD:", 120) or ""
    want = hashlib.sha256(SMALL).hexdigest()
    tap(recvd == "0 " + want, "kill: the new VM receives it byte for byte",
        "" if recvd == "0 " + want else "got %r" % recvd)
    env.cleanup()
    pool = kvmq_host.debugfs_stat("aperture_pages")
    tap(pool == pool0, "kill: host pool back to %d pages" % pool0,
        "" if pool == pool0 else "%d pages" % pool)


def test_reset(env):
    """The receiver reset mid-stream: it boots again and drains the queue."""
    pool0 = kvmq_host.debugfs_stat("aperture_pages")
    group = kvmq_host.create_group()
    try:
        a, b = stream_pair(env, group, reboot=True, kind="pages")
    finally:
        os.close(group)
    if not stream_paused(a, b, "reset"):
        return
    b.reset()
    # The new boot has a new peer table: the VMM tells it again.
    b.post("peer send 1\n")
    b.post("peer resume 9\n")
    # Booted again, the receiver takes the rest of the stream (the queue
    # outlives the reset) up to its end.
    first = a.wait_line("FIRST:", BOOT) or ""
    tap(first.startswith("0"), "reset: the sender's stream completes",
        "" if first.startswith("0") else "got %r" % first)
    # Only the new boot gets this far.  The messages its receive ring held
    # (their pages in the aperture), the queued ones and all after them
    # arrive: everything after the old boot's first messages.
    recvd = b.wait_line("RECVD:", BOOT) or ""
    _, unit, pause = STREAMS["pages"]
    want = "0 " + hashlib.sha256(BIG[pause * unit:]).hexdigest()
    tap(recvd == want, "reset: the receiver, booted again, got the rest of "
        "the stream, from its receive ring on, byte for byte",
        "" if recvd == want else "got %r" % recvd)
    if recvd != want:
        dump(a)
        dump(b)
    q = b.query()
    tap(q["held"] == 0 and q["queued"] == 0 and
        q["queues"][1]["senders"] == 1,
        "reset: nothing held, the grant kept")
    env.cleanup()
    pool = kvmq_host.debugfs_stat("aperture_pages")
    tap(pool == pool0, "reset: host pool back to %d pages" % pool0,
        "" if pool == pool0 else "%d pages" % pool)


WAIT_KILL = """
until kvmq peers | grep -q "^killnow "; do sleep 0.1; done
kill -9 $pid
wait $pid
echo "KILLED: $?"
kvmq info | sed 's/^/INFO /'
echo DONE
"""

KILLED_SENDER = WAIT_PEER % ("recv", "recv") + """
kvmq send --pages -n 16 recv /root/big.dat &
pid=$!
""" + WAIT_KILL + "sleep 600\n"

KILLED_RECEIVER = WAIT_PEER % ("send", "send") + """
kvmq recv -o /tmp/out &
pid=$!
""" + WAIT_KILL + """
# With rings, the messages that reached the receive ring hold their pages
# until a program takes them: take what is left, then look again.
until kvmq peers | grep -q "^drain "; do sleep 0.1; done
n=0
while timeout 3 kvmq recv --count 1 -o /dev/null; do n=$((n + 1)); done
echo "DRAINED: $n"
kvmq info | sed 's/^/AFTER /'
sleep 600
"""


def test_program_killed(env):
    """Programs killed mid-transfer in the guests: their pages come back."""
    group = kvmq_host.create_group()
    try:
        a = env.guest("send", 1, group, KILLED_SENDER,
                      {"/root/big.dat": data(6, 24 * 1024 * 1024)})
        b = env.guest("recv", 2, group, KILLED_RECEIVER, depth=4)
    finally:
        os.close(group)
    a.post("peer recv 2\n")
    b.post("peer send 1\n")
    b.grant(1)
    a.start()
    b.start()
    ok = wait_until(lambda: b.received() >= 20, BOOT)
    tap(ok, "program killed: pages flow")
    if not ok:
        dump(a)
        dump(b)
        return
    a.post("peer killnow 9\n")
    b.post("peer killnow 9\n")
    done = a.wait_line("DONE", 120) is not None and \
        b.wait_line("DONE", 120) is not None
    ia, ib = info_of(a), info_of(b)
    qa, qb = a.query(), b.query()
    diag("guest held: send %s, recv %s; aperture held: send %d, recv %d" %
         (ia.get("held"), ib.get("held"), qa["held"], qb["held"]))
    tap(done and a.wait_line("KILLED:", 1) == "137" and
        b.wait_line("KILLED:", 1) == "137",
        "program killed: both programs died of SIGKILL mid-transfer")
    tap(ia.get("held") == "0" and qa["held"] == 0,
        "program killed: the sender's pages, allocated and not sent, "
        "came back")
    tap(ib.get("held") == "0",
        "program killed: the receiver's pages, received and not given "
        "back, came back")
    b.post("peer drain 9\n")
    drained = b.wait_line("DRAINED:", 120)
    after = b.wait_line("AFTER held:", 30)
    qb = b.query()
    diag("drained %s messages; then aperture held %d, queued %d, queue "
         "lengths %s, guest %s" % (drained, qb["held"], qb["queued"],
                                   [q["length"] for q in qb["queues"]],
                                   after))
    tap(drained is not None and after == "0" and
        qb["held"] == 0 and qb["queued"] == 0 and
        all(q["length"] == 0 for q in qb["queues"]),
        "program killed: the messages left in the receiver's queue taken "
        "by a new program, nothing held in the aperture")


# Each guest sends a file of pages to the other.  The receiver starts its
# own send only once the VMM names the peer "go": by then the sender's
# messages wait in its receive ring, their pages already placed in its
# aperture, where its own allocations must not land.
ALLOC = """%s
kvmq send --pages %s /root/file.dat
echo "SENT: $?"
kvmq recv -o /tmp/out
echo "RECVD: $? $(sha256sum /tmp/out | cut -d' ' -f1)"
echo DONE
sleep 600
"""
ALLOC_FIRST = WAIT_PEER % ("recv", "recv") + ALLOC % ("", "recv")
ALLOC_SECOND = WAIT_PEER % ("send", "send") + ALLOC % (
    'until kvmq peers | grep -q "^go "; do sleep 0.1; done', "send")


def test_ring_alloc(env):
    """Allocations while received pages wait in the receive ring."""
    fa, fb = data(7, 200 * 1024 + 5), data(8, 300 * 1024 + 7)
    group = kvmq_host.create_group()
    try:
        a = env.guest("send", 1, group, ALLOC_FIRST, {"/root/file.dat": fa})
        b = env.guest("recv", 2, group, ALLOC_SECOND,
                      {"/root/file.dat": fb})
    finally:
        os.close(group)
    a.post("peer recv 2\n")
    b.post("peer send 1\n")
    a.grant(2)
    b.grant(1)
    a.start()
    b.start()
    sent = a.wait_line("SENT:", BOOT)
    b.post("peer go 9\n")
    ra = a.wait_line("RECVD:", BOOT) or ""
    rb = b.wait_line("RECVD:", BOOT) or ""
    wa = "0 " + hashlib.sha256(fb).hexdigest()
    wb = "0 " + hashlib.sha256(fa).hexdigest()
    ok = sent == "0" and b.wait_line("SENT:", 1) == "0" and \
        ra == wa and rb == wb
    tap(ok, "ring alloc: both files byte for byte",
        "" if ok else "got %r %r" % (ra, rb))
    if not ok:
        dump(a)
        dump(b)


def pipe_dir(name, event=False):
    """KVMQ_PIPE_DIR (KVMQ_PIPE_EVENT_DIR for an event), or None after a
    failure (TAP) saying why."""
    d = os.environ.get("KVMQ_PIPE_EVENT_DIR" if event else "KVMQ_PIPE_DIR")
    want = "audio.blocks" if event else "audio.ref"
    if not d or not os.path.exists(os.path.join(d, want)):
        tap(False, "%s: KVMQ_PIPE_DIR has no prepared WAV "
            "(scripts/run-tests.sh prepares it)" % name)
        return None
    return d


def test_pipeline(env):
    """read -> decode -> play between three Linux guests, verified."""
    d = pipe_dir("pipeline")
    if not d:
        return
    import kvmq_pipeline
    sys.stdout.flush()
    rc = kvmq_pipeline.run(d, quiet=True)
    tap(rc == 0, "pipeline: three Linux guests, the WAV decoded and "
        "verified, nothing left held")


def test_guest_ioctls(env, rings=True):
    """The guest driver's errors, poll, a send to itself and io_uring, in
    a guest; with rings, io_uring's sends go through the submission ring."""
    binary = os.path.join(top, "tools/kvmq/test/kvmq_guest_test")
    what = "guest ioctls" + ("" if rings else " (no rings)")
    with open(binary, "rb") as f:
        prog = f.read()
    group = kvmq_host.create_group()
    try:
        g = env.guest("ioctl", 4, group,
                      "dmesg | grep /dev/kvmq0:\n"
                      "/root/kvmq_guest_test /dev/kvmq0 %s\n" %
                      ("rings" if rings else "norings"),
                      {"/root/kvmq_guest_test": prog}, rings=rings)
    finally:
        os.close(group)
    g.post("peer me 4\n")
    g.grant(4)
    g.start()
    st = g.wait_exit(BOOT)
    lines = [ln for ln in g.console().splitlines()
             if ln.startswith("ok ") or ln.startswith("not ok ")]
    for ln in lines:
        ok = ln.startswith("ok ")
        tap(ok, what + ": " + ln.split(" - ", 1)[-1])
    plan = [ln for ln in g.console().splitlines() if ln.startswith("1..")]
    tap(st == 0 and plan == ["1..%d" % len(lines)] and lines,
        "%s: the program ran to its end (%d checks)" % (what, len(lines)))
    probe = [ln for ln in g.console().splitlines() if "/dev/kvmq0:" in ln]
    want = ", rings" if rings else ", no rings"
    tap(len(probe) == 1 and probe[0].endswith(want),
        "%s: the driver says%s" % (what, want),
        "" if probe else "no probe line")
    if st != 0 or not lines:
        dump(g)


def test_guest_ioctls_no_rings(env):
    """The same without rings: sends through io_uring run at once."""
    test_guest_ioctls(env, rings=False)


def test_no_device(env):
    """A guest without the device boots and runs while kvmq is loaded."""
    g = env.guest("plain", 0, None, "echo PLAIN-OK\n")
    g.start()
    st = g.wait_exit(BOOT)
    tap(st == 0 and "PLAIN-OK" in g.console(),
        "no device: a guest without kvmq-pci runs")
    if st != 0:
        dump(g)


def qemu_fails(env, devs, fds=()):
    """QEMU's error message when it refuses to start with `devs`."""
    argv = [env.qemu, "-L", "/usr/share/seabios", "-L", "/usr/share/qemu",
            "-machine", "q35", "-accel", "kvm", "-nodefaults",
            "-display", "none", "-S"]
    for d in devs:
        argv += ["-device", d]
    try:
        p = subprocess.run(argv, pass_fds=fds, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "(started)"
    return p.stderr.strip() if p.returncode else "(started)"


def qmp_error(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except kvmq_host.QmpError as e:
        return str(e)
    return "(no error)"


def test_errors(env):
    """Bad device properties and QMP arguments: clear errors, no crash."""
    cases = [
        (["kvmq-pci", "kvmq-pci"], "one kvmq-pci device per VM"),
        (["kvmq-pci,aperture=3M"], "aperture must be a power of 2"),
        (["kvmq-pci,queues=64"], "queues must be 1 to 63"),
        (["kvmq-pci,depth=0"], "depth must be 1 to"),
        (["kvmq-pci,rx-entries=3"], "must be powers of 2"),
        (["kvmq-pci,sq-entries=8192"], "must be powers of 2"),
        (["kvmq-pci,lazy-delay=5"], "lazy-delay must be 0, or"),
        (["kvmq-pci,quota=128M"], "quota must be"),
        (["kvmq-pci,identity=3"], "an identity needs a group"),
        (["kvmq-pci,group=nosuch,identity=3"], "group:"),
    ]
    for devs, want in cases:
        err = qemu_fails(env, devs)
        tap(want in err, "errors: -device %s: %s" % (" -device ".join(devs),
                                                      want),
            "" if want in err else "got %r" % err)

    group = kvmq_host.create_group()
    try:
        a = env.guest("err", 5, group, "true\n", queues=2)
        err = qemu_fails(env, ["kvmq-pci,group=%d,identity=5" % group],
                         (group,))
        tap("File exists" in err, "errors: an identity taken in the group",
            "" if "File exists" in err else "got %r" % err)
    finally:
        os.close(group)
    checks = [
        (lambda: a.grant(7, queue=0), "not a data queue"),
        (lambda: a.grant(7, queue=3), "not a data queue"),
        (lambda: a.revoke(7, queue=1), "No such file or directory"),
        (lambda: a.post("x" * 2049), "at most 2048"),
        (lambda: a.qmp.cmd("kvmq-post", device="kvmq0", queue=9,
                           data="x"), "Invalid argument"),
        (lambda: a.qmp.cmd("kvmq-grant", device="nosuch", queue=1,
                           sender=7), "is not a kvmq-pci device"),
        (lambda: a.qmp.cmd("kvmq-set-identity", device="kvmq0",
                           group="0", identity=6), "already"),
    ]
    for fn, want in checks:
        err = qmp_error(fn)
        tap(want in err, "errors: QMP: %s" % want,
            "" if want in err else "got %r" % err)
    a.grant(7)
    err = qmp_error(a.grant, 7)
    tap("File exists" in err, "errors: QMP: a grant twice")
    tap(a.query()["queues"][1]["senders"] == 1 and a.proc.poll() is None,
        "errors: QEMU still runs, the state as it was")

    p = kvmq_host.Guest(env.qemu, env.kernel, env.initrd("nodev", {}),
                        "nodev", 0, None, "true", env.dir)
    env.guests.append(p)
    tap(p.qmp.cmd("query-kvmq") == [],
        "errors: query-kvmq without a device is empty")


def main(tests=None):
    """Run `tests` (by default this program's), print TAP; the exit
    status: 0 passed, 1 failed, 4 skipped."""
    for v in ("KVMQ_QEMU", "KVMQ_GUEST_KERNEL"):
        if not os.environ.get(v):
            print("1..0 # SKIP %s not set (scripts/run-tests.sh sets it)" %
                  v)
            return 4
    if os.path.exists("/proc/lockdep_stats") and \
            not os.environ.get("KVMQ_QEMU_DEBUG"):
        # A debug test host runs nested guests several times slower.
        print("1..0 # SKIP a debug kernel: set KVMQ_QEMU_DEBUG=1 to run "
              "the Linux guests on it")
        return 4
    if not os.path.exists("/dev/kvmq") or not os.path.exists("/dev/kvm"):
        print("1..0 # SKIP needs /dev/kvm and kvmq loaded")
        return 4
    env = Env()
    # The driver's own checks, in a guest with rings and in one without,
    # are kvmq_qemu_guest_test.py's, the pipeline kvmq_qemu_pipeline_test.py's,
    # kill and reset kvmq_qemu_restart_test.py's: each program keeps within
    # its timeout.
    tests = tests or [test_errors, test_transfer, test_ring_alloc,
                      test_program_killed, test_revoke, test_no_device]
    only = os.environ.get("KVMQ_QEMU_TESTS", "").split()
    if only:
        tests = [t for t in tests if t.__name__[5:] in only]
    try:
        for t in tests:
            try:
                t(env)
            except Exception as e:          # report, go on
                tap(False, "%s: %s: %s" % (t.__name__, type(e).__name__, e))
                for g in env.guests:
                    dump(g)
            finally:
                env.cleanup()
    finally:
        shutil.rmtree(env.dir, ignore_errors=True)
    print("1..%d" % len(results))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
