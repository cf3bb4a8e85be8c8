#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""kvmq_pipeline - the read/decode/play pipeline of three Linux guests.

  kvmq_pipeline.py prepare DIR [--mib N]
      Write DIR/audio.wav, a WAV of the formula below, and DIR/audio.ref,
      the SHA-256 of what "play" must receive: the WAV with every 16-bit
      sample after its 44-byte header times 3/2, clipped.  Run it where
      Python is fast (the build machine): the test host emulates its CPU.

  kvmq_pipeline.py run DIR
      On a KVM host with kvmq loaded: create a group, start one QEMU per
      stage with the kvmq-pci device, tell each guest its peers (QMP
      kvmq-post), grant read -> decode and decode -> play only, and watch:
      "read" sends the WAV as 2 MiB blocks, "decode" multiplies the samples
      by 3/2 in the very pages they arrived in and moves them on, "play"
      checksums what arrives.  Prints each stage's progress, then a report,
      and exits 0 only if play's checksum is the reference.

Environment: KVMQ_QEMU (the patched QEMU), KVMQ_GUEST_KERNEL (the guests'
kernel), KVMQ_TOP (the kvmq tree, for scripts/mkguest-initramfs.sh).

The WAV: 48 kHz, 16-bit, stereo; frame n at t = n / 48000 s is
  left  = 26000 * (0.7 sin(2 pi 440 t) + 0.3 sin(2 pi (220 + 20 t) t))
  right = 26000 * sin(2 pi 330 t)
rounded to the nearest integer, for as many frames as fill N MiB (default
8) with the header.  At 3/2 the loudest samples clip.
"""

import hashlib
import math
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvmq_host  # noqa: E402

RATE = 48000
HEADER = 44
NUM, DEN = 3, 2
BOOT = 300


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
    with open(os.path.join(d, "audio.wav"), "wb") as f:
        f.write(wav)
    with open(os.path.join(d, "audio.ref"), "w") as f:
        f.write(hashlib.sha256(decoded(wav)).hexdigest() + "\n")
    print("pipeline: %s/audio.wav, %d bytes, and its reference" %
          (d, len(wav)))


# Each stage waits for its peers, says READY, and starts when the VMM
# posts the line "peer go 1" (after it sampled the VM exits of the boot).
WAIT_PEER = """
until kvmq peers | grep -q "^%s "; do sleep 0.1; done
echo READY
until kvmq peers | grep -q "^go "; do sleep 0.1; done
"""
# Each stage stays up when done, so that its VMM can still query it.
DONE = """
kvmq info | grep held
sleep 3600
"""
READ = WAIT_PEER % "decode" + """
kvmq send --blocks -n 1 decode /root/audio.wav; echo "STAGE-EXIT: $?"
""" + DONE
DECODE = WAIT_PEER % "play" + """
kvmq forward --gain 3/2 --skip 44 play; echo "STAGE-EXIT: $?"
""" + DONE
PLAY = WAIT_PEER % "decode" + """
kvmq recv -o /tmp/out; echo "STAGE-EXIT: $?"
echo "PLAY-SUM: $(sha256sum /tmp/out | cut -d' ' -f1) $(wc -c </tmp/out)"
""" + DONE


def vcpu_exits(g):
    """The VM exits of the guest's vCPUs (QMP query-stats), or None."""
    try:
        r = g.qmp.cmd("query-stats", target="vcpu", providers=[
            {"provider": "kvm", "names": ["exits"]}])
    except (kvmq_host.QmpError, OSError, EOFError):
        return None
    total = 0
    for v in r:
        for st in v.get("stats", []):
            if st["name"] == "exits":
                total += st["value"]
    return total


def run(d, quiet=False):
    qemu = os.environ["KVMQ_QEMU"]
    kernel = os.environ["KVMQ_GUEST_KERNEL"]
    top = os.environ.get("KVMQ_TOP", os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "../.."))
    wav = os.path.join(d, "audio.wav")
    with open(os.path.join(d, "audio.ref")) as f:
        ref = f.read().strip()
    size = os.path.getsize(wav)
    work = kvmq_host.workdir()
    before = {k: kvmq_host.debugfs_stat(k)
              for k in ("pages_moved", "bytes_copied", "aperture_pages")}

    def initrd(name, files):
        out = os.path.join(work, name + ".cpio.gz")
        import subprocess
        subprocess.run([os.path.join(top, "scripts/mkguest-initramfs.sh"),
                        out] + files, check=True, stdout=subprocess.DEVNULL)
        return out

    def script(name, text):
        p = os.path.join(work, name + ".sh")
        with open(p, "w") as f:
            f.write(text)
        return p + ":/root/run.sh"

    print("pipeline: %d bytes of WAV from read to decode to play" % size)
    group = kvmq_host.create_group()
    guests = []
    try:
        stages = [("read", 1, READ, [wav + ":/root/audio.wav"]),
                  ("decode", 2, DECODE, []),
                  ("play", 3, PLAY, [])]
        for name, ident, text, files in stages:
            g = kvmq_host.Guest(qemu, kernel,
                                initrd(name, [script(name, text)] + files),
                                name, ident, group, "sh /root/run.sh", work,
                                aperture="64M", depth=8)
            guests.append(g)
    except Exception:
        for g in guests:
            g.kill()
        raise
    finally:
        os.close(group)
    read, decode, play = guests
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
            for h in guests:
                h.kill()
            return 1
    exits0 = {g.name: vcpu_exits(g) for g in guests}
    t0 = time.monotonic()
    for g in guests:
        g.post("peer go 1\n")
    print("pipeline: the guests booted; go")

    def stage_line():
        qs = [g.query()["stats"] for g in guests]
        el = max(time.monotonic() - t0, 1e-3)
        parts = ["read sent %d msgs %.1f MiB" %
                 (qs[0]["sent"], qs[0]["sent-bytes"] / 2**20),
                 "decode fwd %d msgs %.1f MiB" %
                 (qs[1]["sent"], qs[1]["sent-bytes"] / 2**20),
                 "play got %d msgs %.1f MiB (%.2f MiB/s)" %
                 (qs[2]["received"], qs[2]["received-bytes"] / 2**20,
                  qs[2]["received-bytes"] / 2**20 / el)]
        return "pipeline: %5.0f s  " % el + ", ".join(parts)

    result = None
    last = 0
    while time.monotonic() - t0 < BOOT * 2:
        result = play.wait_line("PLAY-SUM:", 0)
        gone = [g.name for g in guests if g.proc.poll() is not None]
        if result or gone:
            break
        if not quiet and time.monotonic() - last >= 5:
            print(stage_line(), flush=True)
            last = time.monotonic()
        time.sleep(0.5)
    elapsed = time.monotonic() - t0
    gone = [g.name for g in guests if g.proc.poll() is not None]
    if gone:
        print("pipeline: FAIL: QEMU of %s exited" % ", ".join(gone))
        for g in guests:
            print("---- %s: console, then QEMU's output" % g.name)
            print(g.console()[-3000:])
            print(g.qemu_output()[-2000:])
            g.kill()
        return 1
    print(stage_line())

    stats = {g.name: g.query() for g in guests}
    exits = {}
    for g in guests:
        e = vcpu_exits(g)
        exits[g.name] = None if e is None or exits0[g.name] is None else \
            e - exits0[g.name]
    codes = {g.name: g.wait_line("STAGE-EXIT:", 5) for g in guests}
    for g in guests:
        g.kill()
    after = {k: kvmq_host.debugfs_stat(k) for k in before}

    got = (result or "").split()
    got_sum, got_len = (got[0], got[1]) if len(got) == 2 else ("?", "0")
    ok = got_sum == ref and int(got_len) == size
    st = {n: q["stats"] for n, q in stats.items()}
    print("")
    print("pipeline report (test-host figures: nested KVM under TCG)")
    print("  delivered to play:   %d bytes in %.0f s, %s" %
          (int(got_len), elapsed,
           "verified against the reference" if ok else "NOT the reference"))
    print("  stage exit status:   read %s, decode %s, play %s" %
          (codes["read"], codes["decode"], codes["play"]))
    for n in ("read", "decode", "play"):
        s = st[n]
        msgs = s["sent"] + s["received"]
        e = exits[n]
        print("  %-7s sent %4d msgs %9d B, received %4d msgs %9d B, "
              "interrupts %4d, VM exits while it ran %s%s" %
              (n, s["sent"], s["sent-bytes"], s["received"],
               s["received-bytes"], s["notified"] + s["room-notified"],
               e if e is not None else "n/a",
               " (%.1f per message)" % (e / msgs) if e and msgs else ""))
    print("  pages moved without copying: %d (%d MiB)" %
          (after["pages_moved"] - before["pages_moved"],
           (after["pages_moved"] - before["pages_moved"]) * 4096 // 2**20))
    print("  bytes copied:        %d" %
          (after["bytes_copied"] - before["bytes_copied"]))
    print("  host pool after:     %d pages (before: %d)" %
          (after["aperture_pages"], before["aperture_pages"]))
    if after["aperture_pages"] != before["aperture_pages"]:
        ok = False
    if not ok:
        for g in guests:
            print("---- console of %s" % g.name)
            print(g.console()[-2000:])
    print("pipeline: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "prepare":
        mib = 8
        if len(sys.argv) == 5 and sys.argv[3] == "--mib":
            mib = int(sys.argv[4])
        prepare(sys.argv[2], mib)
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "run":
        return run(sys.argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
