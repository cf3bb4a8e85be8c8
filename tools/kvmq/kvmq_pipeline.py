#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""kvmq_pipeline - the read/decode/play pipeline of three Linux guests.

  kvmq_pipeline.py prepare DIR [--mib N]
      Write DIR/audio.wav, a WAV of the formula below; DIR/audio.ref, the
      SHA-256 of what "play" must receive: the WAV with every 16-bit
      sample after its 44-byte header times 3/2, clipped; and
      DIR/audio.blocks, the SHA-256 of each 2 MiB block of it.  Run it
      where Python is fast (the build machine): the test host emulates
      its CPU.

  kvmq_pipeline.py run DIR [--event EVENT] [--at MIB] [--depth N]
                           [--decode-send uring|ioctl] [--read-kind KIND]
  kvmq_pipeline.py compare DIR
      The pipeline three ways, one after the other: blocks moved with
      decode sending through io_uring, the same with a hypercall per send,
      and the stream as 2 KiB inline messages, copied by kvmq at each hop.
      Prints a table: seconds, MiB/s, MiB moved and copied, VM exits and
      hypercalls per message of each stage.
      On a KVM host with kvmq loaded: create a group, start one QEMU per
      stage with the kvmq-pci device, tell each guest its peers (QMP
      kvmq-post), grant read -> decode and decode -> play only, and watch:
      "read" sends the WAV as 2 MiB blocks, "decode" multiplies the samples
      by 3/2 in the very pages they arrived in and moves them on, "play"
      hashes each block that arrives and the whole stream.  Prints each
      stage's progress, then a report, and exits 0 only if the outcome is
      the one documented for the run (Documentation/qemu.rst, section 6):
      without an event, play's stream is the reference exactly.

      EVENT, once play has received MIB (default 2) MiB and while the
      rest of the stream is in flight:
        reboot-decode  decode's QEMU quits and a new QEMU takes its
                       identity; read's refused sends are sent again
        kill-play      play's QEMU is killed (SIGKILL)
        revoke         play revokes decode's grant
      N is the depth of each guest's queue: 8, or 1 with an event, so
      that the stream is still in flight when the event comes.
      decode sends through io_uring (kvmq forward --uring: lazy entries of
      its vCPU's submission ring, no exit of their own), or with one
      KVMQ_HC_SEND each (ioctl).  The report gives each stage's VM exits
      and hypercalls per message (KVM's counters, QMP query-stats).

Environment: KVMQ_QEMU (the patched QEMU), KVMQ_GUEST_KERNEL (the guests'
kernel), KVMQ_TOP (the kvmq tree, for scripts/mkguest-initramfs.sh).

The WAV: 48 kHz, 16-bit, stereo; frame n at t = n / 48000 s is
  left  = 26000 * (0.7 sin(2 pi 440 t) + 0.3 sin(2 pi (220 + 20 t) t))
  right = 26000 * sin(2 pi 330 t)
rounded to the nearest integer, for as many frames as fill N MiB (default
8) with the header.  At 3/2 the loudest samples clip.
"""

import argparse
import hashlib
import math
import os
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvmq_host  # noqa: E402

RATE = 48000
HEADER = 44
NUM, DEN = 3, 2
BOOT = 300
BLOCK = 2 << 20
EVENTS = ("reboot-decode", "kill-play", "revoke")
RETRY = 120             # read's --retry: how long decode may be away
AWAY = 2                # seconds between decode's QEMU quitting and the new


def wav_bytes(mib):
    frames = (mib * 1024 * 1024 - HEADER) // 4
    pcm = bytearray(frames * 4)
    for n in range(frames):
        t = n / RATE
        left = 26000 * (0.7 * math.sin(2 * math.pi * 440 * t) +
                        0.3 * math.sin(2 * math.pi * (220 + 20 * t) * t))
        right = 26000 * math.sin(2 * math.pi * 330 * t)
        struct.pack_into("<hh", pcm, n * 4, round(left), round(right))
    hdr = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE" + \
        b"fmt " + struct.pack("<IHHIIHH", 16, 1, 2, RATE, RATE * 4, 4, 16) + \
        b"data" + struct.pack("<I", len(pcm))
    return hdr + bytes(pcm)


def decoded(wav):
    """What decode makes of the WAV: samples times NUM/DEN, clipped, with
    C's division (toward zero)."""
    out = bytearray(wav)
    for i in range(HEADER, len(out) - 1, 2):
        s = struct.unpack_from("<h", out, i)[0]
        v = abs(s * NUM) // DEN * (1 if s >= 0 else -1)
        struct.pack_into("<h", out, i, max(-32768, min(32767, v)))
    return bytes(out)


def prepare(d, mib):
    os.makedirs(d, exist_ok=True)
    wav = wav_bytes(mib)
    dec = decoded(wav)
    blocks = "".join(hashlib.sha256(dec[i:i + BLOCK]).hexdigest() + "\n"
                     for i in range(0, len(dec), BLOCK))
    # Each file whole or not at all: a run may be reading the old ones.
    for name, data in (("audio.wav", wav), ("audio.blocks", blocks.encode()),
                       ("audio.ref", (hashlib.sha256(dec).hexdigest() +
                                      "\n").encode())):
        tmp = os.path.join(d, name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(d, name))
    print("pipeline: %s/audio.wav, %d bytes, and its reference" %
          (d, len(wav)))


# Each stage waits for its peers, says READY, and starts when the VMM
# posts the line "peer go 1" (after it sampled the VM exits of the boot).
WAIT_PEER = """
until kvmq peers | grep -q "^@PEER@ "; do sleep 0.1; done
echo READY
until kvmq peers | grep -q "^go "; do sleep 0.1; done
"""
# Each stage says how its program ended (its standard error follows as
# STAGE-LOG lines), and stays up, so that its VMM can still query it.
DONE = """
echo "STAGE-EXIT: $st"
sed 's/^/STAGE-LOG: /' /tmp/err
kvmq info | grep held
sleep 3600
"""
READ = WAIT_PEER.replace("@PEER@", "decode") + """
kvmq send @KIND@ --retry @RETRY@ decode /root/audio.wav 2>/tmp/err
st=$?
""" + DONE
# A decode that starts mid-stream (booted again) has no header to skip.
# @URING@: --uring, sends in batches through io_uring, or nothing.
DECODE = WAIT_PEER.replace("@PEER@", "play") + """
kvmq forward --gain 3/2 --skip @SKIP@ @URING@ play 2>/tmp/err
st=$?
""" + DONE
# play prints the SHA-256 of each 2 MiB block it got (each message but
# the last is one block), then of the whole stream.  With an event, it
# stops after @AT@ messages, says so, and goes on when the VMM names the
# peer "resume": the VMM acts on the pipeline at that point.
PLAY_BLOCKS = """
blocks() {
	n=$(wc -c <"$1"); i=0
	while [ $((i * 2097152)) -lt "$n" ]; do
		echo "PLAY-BLOCK: $(($2 + i)) $(dd if="$1" bs=2097152 skip=$i \\
count=1 2>/dev/null | sha256sum | cut -d' ' -f1)"
		i=$((i + 1))
	done
}
: >/tmp/out.0
"""
PLAY_AT = """
kvmq recv --count @AT@ -o /tmp/out.0 2>/tmp/err
st=$?
blocks /tmp/out.0 0
echo "PLAY-AT: $st $(wc -c </tmp/out.0)"
until kvmq peers | grep -q "^resume "; do sleep 0.1; done
"""
PLAY_REST = """
kvmq recv -o /tmp/out.1 2>>/tmp/err
st=$((st | $?))
blocks /tmp/out.1 $(($(wc -c </tmp/out.0) / 2097152))
echo "PLAY-SUM: $(cat /tmp/out.0 /tmp/out.1 | sha256sum | cut -d' ' -f1) \\
$(($(wc -c </tmp/out.0) + $(wc -c </tmp/out.1)))"
""" + DONE


def vcpu_exits(g):
    """The VM exits and the hypercalls of the guest's vCPUs (QMP
    query-stats, KVM's counters), or None."""
    try:
        r = g.qmp.cmd("query-stats", target="vcpu", providers=[
            {"provider": "kvm", "names": ["exits", "hypercalls"]}])
    except (kvmq_host.QmpError, OSError, EOFError):
        return None
    total = [0, 0]
    for v in r:
        for st in v.get("stats", []):
            if st["name"] == "exits":
                total[0] += st["value"]
            elif st["name"] == "hypercalls":
                total[1] += st["value"]
    return tuple(total)


def sub(a, b):
    return tuple(x - y for x, y in zip(a, b))


def add(a, b):
    return tuple(x + y for x, y in zip(a, b))


def console_lines(g, prefix):
    """The rest of each whole console line of g that starts with prefix."""
    text = g.console()
    return [line[len(prefix):].strip()
            for line in text[:text.rfind("\n") + 1].splitlines()
            if line.startswith(prefix)]


def kernel_log():
    """The host kernel's log lines (dmesg), or None."""
    try:
        return subprocess.run(["dmesg"], capture_output=True, text=True,
                              check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return None


BAD_LOG = ("BUG:", "WARNING:", "Oops", "KFENCE:", "general protection",
           "Call Trace")


class Stage:
    """A stage's guest, its counters so far, and those of the QEMUs it
    had before (decode booted again)."""

    STATS = ("sent", "sent-bytes", "received", "received-bytes",
             "notified", "room-notified")

    def __init__(self, g):
        self.g = g
        self.gone = False               # the event ended its QEMU
        self.past = {k: 0 for k in self.STATS}
        self.past_exits = (0, 0)
        self.exits0 = None              # the current QEMU's, at go
        self.last = None                # its query-kvmq stats, last seen
        self.last_exits = None          # its (exits, hypercalls) since go

    def stats(self):
        if not self.gone:
            try:
                self.last = self.g.query()["stats"]
            except (kvmq_host.QmpError, OSError, EOFError):
                pass
        cur = self.last or {k: 0 for k in self.STATS}
        return {k: self.past[k] + cur[k] for k in self.STATS}

    def exits(self):
        """(VM exits, hypercalls) since go, or None if not known."""
        e = None if self.gone else vcpu_exits(self.g)
        if e is not None and self.exits0 is not None:
            self.last_exits = sub(e, self.exits0)
        if self.last_exits is None:
            return None
        return add(self.past_exits, self.last_exits)

    def end(self, sig):
        """The QEMU ends (sig): keep what it counted."""
        self.stats()
        self.exits()
        self.g.kill(sig)
        self.gone = True

    def replace(self, g):
        """A new QEMU takes the stage's place."""
        cur = self.last or {k: 0 for k in self.STATS}
        for k in self.STATS:
            self.past[k] += cur[k]
        self.past_exits = add(self.past_exits, self.last_exits or (0, 0))
        self.g = g
        self.gone = False
        self.exits0 = self.last = self.last_exits = None


def pipeline(d, event=None, at=2, depth=None, quiet=False,
             decode_send="uring", read_kind="blocks"):
    """Run the pipeline; a dict of what happened, "ok" the verdict."""
    guests = []
    try:
        return run_guests(d, event, at, depth, quiet, guests, decode_send,
                          read_kind)
    finally:
        for g in guests:
            g.kill()


def run_guests(d, event, at, depth, quiet, guests, decode_send, read_kind):
    qemu = os.environ["KVMQ_QEMU"]
    kernel = os.environ["KVMQ_GUEST_KERNEL"]
    top = os.environ.get("KVMQ_TOP", os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "../.."))
    if event is not None and event not in EVENTS:
        raise ValueError("unknown event %r" % event)
    if depth is None:
        depth = 1 if event else 8
    uring = "--uring" if decode_send == "uring" and not event else ""
    at_msgs = max(1, at * 2**20 // BLOCK)
    wav = os.path.join(d, "audio.wav")
    with open(os.path.join(d, "audio.ref")) as f:
        ref = f.read().strip()
    try:
        with open(os.path.join(d, "audio.blocks")) as f:
            ref_blocks = f.read().split()
    except OSError:
        ref_blocks = None
    size = os.path.getsize(wav)
    nblocks = (size + BLOCK - 1) // BLOCK
    r = {"ok": False, "event": event, "size": size, "blocks": nblocks,
         "depth": depth, "timeline": []}
    if event and not ref_blocks:
        print("pipeline: FAIL: %s has no audio.blocks (run prepare)" % d)
        return r
    if event and nblocks < at_msgs + 2 * depth + 1:
        print("pipeline: FAIL: %d blocks: too few for an event after %d "
              "with queues of depth %d" % (nblocks, at_msgs, depth))
        return r
    work = kvmq_host.workdir()
    log0 = kernel_log()
    before = {k: kvmq_host.debugfs_stat(k)
              for k in ("pages_moved", "bytes_copied", "aperture_pages")}

    def initrd(name, text, files=()):
        sh = os.path.join(work, name + ".sh")
        with open(sh, "w") as f:
            f.write(text)
        out = os.path.join(work, name + ".cpio.gz")
        subprocess.run([os.path.join(top, "scripts/mkguest-initramfs.sh"),
                        out, sh + ":/root/run.sh"] + list(files),
                       check=True, stdout=subprocess.DEVNULL)
        return out

    # With an event, the depth of the queues alone bounds what is in
    # flight: no receive rings, which would take 16 more messages each.
    def guest(name, ident, rd, group):
        return kvmq_host.Guest(qemu, kernel, rd, name, ident, group,
                               "sh /root/run.sh", work, aperture="64M",
                               depth=depth, rings=not event)

    play_text = WAIT_PEER.replace("@PEER@", "decode") + PLAY_BLOCKS + \
        (PLAY_AT.replace("@AT@", str(at_msgs)) if event else "st=0\n") + \
        PLAY_REST
    kind = "--blocks -n 1" if read_kind == "blocks" else "--bytes"
    rds = {"read": initrd("read", READ.replace("@RETRY@", str(RETRY))
                          .replace("@KIND@", kind),
                          [wav + ":/root/audio.wav"]),
           "decode": initrd("decode", DECODE.replace("@SKIP@",
                                                     str(HEADER))
                            .replace("@URING@", uring)),
           "play": initrd("play", play_text)}
    if event == "reboot-decode":
        rds["decode2"] = initrd("decode2", DECODE.replace("@SKIP@", "0")
                                .replace("@URING@", uring))

    print("pipeline: %d bytes of WAV from read to decode to play%s" %
          (size, ", event %s after %d MiB at play, queues of depth %d" %
           (event, at_msgs * BLOCK >> 20, depth) if event else ""))
    group = kvmq_host.create_group()
    try:
        for name, ident in (("read", 1), ("decode", 2), ("play", 3)):
            guests.append(guest(name, ident, rds[name], group))
    except Exception:
        for g in guests:
            g.kill()
        os.close(group)
        raise
    if event != "reboot-decode":
        os.close(group)
        group = None
    stages = {g.name: Stage(g) for g in guests}
    read, decode, play = guests

    def all_guests():
        return [st.g for st in stages.values()]

    def kill_all():
        for g in guests:
            g.kill()

    read.post("peer decode 2\n")
    decode.post("peer read 1\npeer play 3\n")
    play.post("peer decode 2\n")
    decode.grant(1)
    play.grant(2)
    for g in guests:
        g.start()
    print("pipeline: read(1) -> decode(2) -> play(3) granted, guests "
          "booting")
    for g in guests:
        if g.wait_line("READY", BOOT) is None:
            print("pipeline: FAIL: %s did not boot" % g.name)
            print(g.console()[-3000:])
            kill_all()
            if group is not None:
                os.close(group)
            return r
    for st in stages.values():
        st.exits0 = vcpu_exits(st.g)
    t0 = time.monotonic()
    for g in guests:
        g.post("peer go 1\n")
    print("pipeline: the guests booted; go")

    def now():
        return time.monotonic() - t0

    def note(text):
        r["timeline"].append((now(), text))
        if not quiet:
            print("pipeline: %5.1f s  %s" % (now(), text), flush=True)

    def stage_line():
        qs = {n: st.stats() for n, st in stages.items()}
        el = max(now(), 1e-3)
        parts = ["read sent %d msgs %.1f MiB" %
                 (qs["read"]["sent"], qs["read"]["sent-bytes"] / 2**20),
                 "decode fwd %d msgs %.1f MiB" %
                 (qs["decode"]["sent"], qs["decode"]["sent-bytes"] / 2**20),
                 "play got %d msgs %.1f MiB (%.2f MiB/s)" %
                 (qs["play"]["received"],
                  qs["play"]["received-bytes"] / 2**20,
                  qs["play"]["received-bytes"] / 2**20 / el)]
        return "pipeline: %5.0f s  " % el + ", ".join(parts)

    def wait(pred, timeout):
        """Until pred() is true, or a QEMU not ended on purpose exits."""
        last = time.monotonic()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = pred()
            if v:
                return v
            if [st for st in stages.values()
                    if not st.gone and st.g.proc.poll() is not None]:
                return None
            if not quiet and time.monotonic() - last >= 5:
                print(stage_line(), flush=True)
                last = time.monotonic()
            time.sleep(0.2)
        return None

    def stage_exit(st):
        """The exit status of the stage's program, once the stage printed
        what follows it (STAGE-LOG, held), else None."""
        if st.g.wait_line("held:", 0) is None:
            return None
        return int(st.g.wait_line("STAGE-EXIT:", 0))

    def end_stream(st, name):
        """The end marker of the stream st receives, from the VMM, unless
        its program ended (the marker of the stage before it was lost
        with the old decode, or decode was stopped)."""
        def posted():
            if stage_exit(st) is not None:
                return "ended"
            try:
                st.g.post("", queue=1)
            except kvmq_host.QmpError as e:
                if "temporarily unavailable" not in str(e):
                    raise
                return None             # its queue is full: later
            return "posted"
        how = wait(posted, 120)
        if how == "posted":
            note("the VMM posted an end marker to %s" % name)
        return how

    failed = None
    r["read_refused"], r["read_err"] = 0, None
    if event:
        at_line = wait(lambda: play.wait_line("PLAY-AT:", 0), BOOT)
        if at_line is None:
            failed = "play did not reach %d MiB" % (at_msgs * BLOCK >> 20)
        else:
            r["at_bytes"] = int(at_line.split()[1])
    if event and not failed:
        r["at_time"] = now()
        if event == "reboot-decode":
            stages["decode"].end(signal.SIGTERM)
            note("play holds at %.1f MiB; decode's QEMU quits (SIGTERM): "
                 "its VM detaches" % (r["at_bytes"] / 2**20))
            t_kill = now()
            play.post("peer resume 1\n")
            time.sleep(AWAY)
            g2 = guest("decode2", 2, rds["decode2"], group)
            guests.append(g2)
            g2.post("peer read 1\npeer play 3\n")
            g2.grant(1)
            stages["decode"].replace(g2)
            g2.start()
            r["away"] = now() - t_kill
            note("a new QEMU for decode, identity 2, attached and granted "
                 "read, %.1f s after the old one quit" % r["away"])
            if g2.wait_line("READY", BOOT) is None:
                failed = "the new decode did not boot"
            else:
                stages["decode"].exits0 = vcpu_exits(g2)
                g2.post("peer go 1\n")
                r["booted"] = now() - t_kill
                note("decode booted again and forwards, %.1f s after it "
                     "went away" % r["booted"])
                if wait(lambda: stage_exit(stages["read"]) is not None,
                        RETRY + BOOT) is None:
                    failed = "read did not finish"
                else:
                    note("read finished")
                    end_stream(stages["decode"], "decode")
        elif event == "kill-play":
            stages["play"].end(signal.SIGKILL)
            note("play holds at %.1f MiB; its QEMU is killed (SIGKILL)" %
                 (r["at_bytes"] / 2**20))
            if wait(lambda: stage_exit(stages["decode"]) is not None,
                    120) is None:
                failed = "decode's forward did not end"
            else:
                note("decode's forward ended: %s" %
                     "; ".join(console_lines(decode, "STAGE-LOG:")))
        elif event == "revoke":
            play.revoke(2)
            play.post("peer resume 1\n")
            note("play holds at %.1f MiB; play revokes decode's grant, "
                 "then receives again" % (r["at_bytes"] / 2**20))
            if wait(lambda: stage_exit(stages["decode"]) is not None,
                    120) is None:
                failed = "decode's forward did not end"
            else:
                note("decode's forward ended: %s" %
                     "; ".join(console_lines(decode, "STAGE-LOG:")))
                end_stream(stages["play"], "play")

    result = None
    if not failed and event != "kill-play":
        result = wait(lambda: play.wait_line("PLAY-SUM:", 0), BOOT * 2)
        if result is None:
            failed = "play did not finish"
    elapsed = now()
    gone = [st.g.name for st in stages.values()
            if not st.gone and st.g.proc.poll() is not None]
    if gone:
        failed = "QEMU of %s exited" % ", ".join(gone)
    if not failed:
        print(stage_line())

    stats = {n: st.stats() for n, st in stages.items()}
    exits = {n: st.exits() for n, st in stages.items()}
    codes = {n: None if st.gone or st.g.wait_line("held:", 5) is None
             else st.g.wait_line("STAGE-EXIT:", 0)
             for n, st in stages.items()}
    logs = {n: [] if st.gone else console_lines(st.g, "STAGE-LOG:")
            for n, st in stages.items()}
    blocks = console_lines(stages["play"].g, "PLAY-BLOCK:")
    consoles = {g.name: g.console() for g in guests}
    for g in guests:
        g.kill()
    if group is not None:
        os.close(group)
    after = {k: kvmq_host.debugfs_stat(k) for k in before}
    log1 = kernel_log()
    r["host_log"] = None if log0 is None or log1 is None else \
        [x for x in log1[len(log0):] if any(b in x for b in BAD_LOG)]

    # Which blocks of the reference play got, in order.
    index = {h: i for i, h in enumerate(ref_blocks or [])}
    got_idx = []
    for line in blocks:
        w = line.split()
        got_idx.append(index.get(w[1], -1) if len(w) == 2 else -1)
    r["delivered"] = len(got_idx)
    r["verified"] = sum(1 for k, i in enumerate(got_idx) if i >= 0 and
                        (k == 0 or i > got_idx[k - 1]))
    r["delivered_idx"] = got_idx
    r["sent_blocks"] = (stats["read"]["sent-bytes"] + BLOCK - 1) // BLOCK
    r["lost"] = r["sent_blocks"] - r["delivered"]
    got = (result or "").split()
    got_sum, got_len = (got[0], int(got[1])) if len(got) == 2 else ("?", 0)
    r["whole"] = got_sum == ref and got_len == size
    r["codes"] = codes
    r["logs"] = logs
    for line in logs["read"]:
        if " refused (last: " in line:
            r["read_refused"] = int(line.split("send: ")[1].split()[0])
            r["read_err"] = line.split("(last: ")[1].split(")")[0]
    r["decode_log"] = logs["decode"]
    r["elapsed"] = elapsed
    r["pages_moved"] = after["pages_moved"] - before["pages_moved"]
    r["bytes_copied"] = after["bytes_copied"] - before["bytes_copied"]
    r["pool_before"] = before["aperture_pages"]
    r["pool_after"] = after["aperture_pages"]
    r["failed"] = failed

    ok = not failed and r["pool_after"] == r["pool_before"] and \
        r["host_log"] == []
    if event is None:
        bound = 0
        ok = ok and r["whole"] and codes["play"] == "0"
    elif event == "reboot-decode":
        # Lost: what decode held (its queue, one in its forward).
        bound = depth + 1
        ok = ok and codes["read"] == "0" and codes["decode"] == "0" and \
            codes["play"] == "0" and r["sent_blocks"] == nblocks and \
            r["verified"] == r["delivered"] and r["lost"] <= bound
    elif event == "kill-play":
        # Not delivered: play's queue, the block decode's forward held,
        # decode's queue.
        bound = 2 * depth + 1
        ok = ok and codes["decode"] == "1" and \
            any("No such file or directory" in x for x in logs["decode"]) \
            and r["verified"] == r["delivered"] == at_msgs and \
            r["lost"] <= bound
    else:
        # Not delivered: the block decode's forward held, decode's queue.
        bound = depth + 1
        ok = ok and codes["decode"] == "1" and \
            any("Permission denied" in x for x in logs["decode"]) and \
            codes["play"] == "0" and r["verified"] == r["delivered"] and \
            got_idx == list(range(len(got_idx))) and r["lost"] <= bound
    r["bound"] = bound
    r["ok"] = ok

    print("")
    print("pipeline report (test-host figures: nested KVM under TCG)")
    if failed:
        print("  FAILED:              %s" % failed)
    if event:
        print("  event:               %s" % event)
        for t, text in r["timeline"]:
            print("    at %5.1f s: %s" % (t, text))
    if event is None or event == "reboot-decode" or event == "revoke":
        print("  delivered to play:   %d bytes in %.0f s, %s" %
              (got_len, elapsed,
               "the reference exactly" if r["whole"] else
               "not the whole reference"))
    print("  blocks of 2 MiB:     %d in the WAV, %d sent by read, %d "
          "delivered to play, %d verified against the reference%s" %
          (nblocks, r["sent_blocks"], r["delivered"], r["verified"],
           "" if ref_blocks else " (no audio.blocks)"))
    if event:
        lost = [i for i in range(r["sent_blocks"]) if i not in got_idx]
        print("  not delivered:       %d block(s) %s, at most %d: %s" %
              (r["lost"], lost, bound,
               {"reboot-decode": "decode's queue (depth %d) and the block "
                "its forward held, lost with its VM" % depth,
                "kill-play": "play's queue (depth %d), the block decode's "
                "forward held, decode's queue (depth %d)" % (depth, depth),
                "revoke": "the block decode's forward held and decode's "
                "queue (depth %d)" % depth}[event]))
        if event == "reboot-decode":
            print("  read while decode was away: %d sends refused (%s), "
                  "each sent again; decode away %.1f s, forwarding again "
                  "after %.1f s" %
                  (r["read_refused"], r["read_err"] or "none",
                   r.get("away", 0), r.get("booted", 0)))
        else:
            print("  decode:              %s" %
                  ("; ".join(logs["decode"]) or "no error"))
    print("  stage exit status:   read %s, decode %s, play %s" %
          tuple("killed" if stages[n].gone else
                "still running (stopped with its QEMU)" if codes[n] is None
                else codes[n] for n in ("read", "decode", "play")))
    ulog = [x for x in logs["decode"] if "io_uring:" in x]
    print("  decode sends:        %s%s" %
          ("io_uring, lazy entries of its vCPU's submission ring"
           if uring else "one KVMQ_HC_SEND hypercall each",
           " (%s)" % ulog[-1].split("io_uring: ", 1)[1] if ulog else ""))
    r["per_msg"] = {}
    for n in ("read", "decode", "play"):
        s = stats[n]
        msgs = s["sent"] + s["received"]
        e = exits[n]
        if e is not None and msgs:
            r["per_msg"][n] = (e[0] / msgs, e[1] / msgs)
        print("  %-7s sent %4d msgs %9d B, received %4d msgs %9d B, "
              "interrupts %4d" %
              (n, s["sent"], s["sent-bytes"], s["received"],
               s["received-bytes"], s["notified"] + s["room-notified"]))
        print("          while it ran: VM exits %s, hypercalls %s%s" %
              ("n/a" if e is None else e[0], "n/a" if e is None else e[1],
               " (per message: %.1f exits, %.2f hypercalls)" %
               r["per_msg"][n] if n in r["per_msg"] else ""))
    print("  pages moved without copying: %d (%d MiB)" %
          (after["pages_moved"] - before["pages_moved"],
           (after["pages_moved"] - before["pages_moved"]) * 4096 // 2**20))
    print("  bytes copied:        %d" %
          (after["bytes_copied"] - before["bytes_copied"]))
    print("  host pool after:     %d pages (before: %d)" %
          (after["aperture_pages"], before["aperture_pages"]))
    print("  host kernel log:     %s" %
          ("not readable" if r["host_log"] is None else
           "no warning" if not r["host_log"] else
           "; ".join(r["host_log"][:5])))
    if not ok:
        for name, text in consoles.items():
            print("---- console of %s" % name)
            print(text[-2000:])
    print("pipeline: %s" % ("PASS" if ok else "FAIL"))
    return r


# compare: the same stream three ways, one after the other in one test host.
COMPARE = (
    ("blocks", "uring", "blocks moved, decode through io_uring"),
    ("blocks", "ioctl", "blocks moved, decode a hypercall per send"),
    ("bytes", "uring", "2 KiB messages copied, decode through io_uring"),
)


def compare(d):
    """Run the pipeline each way of COMPARE; print them side by side."""
    rows = []
    for kind, send, what in COMPARE:
        print("compare: %s" % what, flush=True)
        r = pipeline(d, quiet=True, decode_send=send, read_kind=kind)
        rows.append((what, r))
    print("")
    print("compare (test-host figures: nested KVM under TCG; compare the "
          "rows, not the machines)")
    print("  %-46s %6s %7s %9s %10s  %s" %
          ("run", "s", "MiB/s", "moved MiB", "copied MiB",
           "VM exits / hypercalls per message: read, decode, play"))
    for what, r in rows:
        if "elapsed" not in r:
            print("  %-46s did not run to its end" % what)
            continue
        pm = r.get("per_msg", {})
        print("  %-46s %6.1f %7.2f %9.1f %10.1f  %s%s" %
              (what, r["elapsed"], r["size"] / 2**20 / max(r["elapsed"],
                                                            1e-3),
               r["pages_moved"] * 4096 / 2**20, r["bytes_copied"] / 2**20,
               ", ".join("%.1f / %.2f" % pm[n] if n in pm else "n/a"
                         for n in ("read", "decode", "play")),
               "" if r["ok"] else "  FAIL"))
    ok = all(r["ok"] for _, r in rows)
    print("compare: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


def run(d, quiet=False, event=None, at=2, depth=None, decode_send="uring"):
    """Run the pipeline; 0 if it passed, else 1."""
    return 0 if pipeline(d, event, at, depth, quiet,
                         decode_send)["ok"] else 1


def main():
    ap = argparse.ArgumentParser(
        description="The read/decode/play pipeline of three Linux guests.",
        epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("dir")
    p.add_argument("--mib", type=int, default=8)
    p = sub.add_parser("run")
    p.add_argument("dir")
    p.add_argument("--event", choices=EVENTS)
    p.add_argument("--at", type=int, default=2, metavar="MIB")
    p.add_argument("--depth", type=int, metavar="N")
    p.add_argument("--decode-send", choices=("uring", "ioctl"),
                   default="uring")
    p.add_argument("--read-kind", choices=("blocks", "bytes"),
                   default="blocks")
    p = sub.add_parser("compare")
    p.add_argument("dir")
    a = ap.parse_args()
    if a.cmd == "prepare":
        prepare(a.dir, a.mib)
        return 0
    if a.cmd == "compare":
        return compare(a.dir)
    return 0 if pipeline(a.dir, a.event, a.at, a.depth, False,
                         a.decode_send, a.read_kind)["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
