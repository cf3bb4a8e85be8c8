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
                           [--transport kvmq|relay] [--trace]
  kvmq_pipeline.py compare DIR [--trace]
      The pipeline four ways, one after the other: blocks moved with
      decode sending through io_uring, the same with a hypercall per send,
      the stream as 2 KiB inline messages, copied by kvmq at each hop, and
      the relay baseline.  Prints a table: seconds until play had the
      stream, MiB/s, MiB moved and copied, VM exits per MiB, and VM exits
      and hypercalls per message of each stage.
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
      N is the depth of each guest's queue: 8, or 1 with an event, and
      the receive rings have 16 entries, or 1 with an event, so that the
      stream (16 MiB or more) is still in flight when the event comes.
      decode sends through io_uring (kvmq forward --uring: lazy entries of
      its vCPU's submission ring, no exit of their own), or with one
      KVMQ_HC_SEND each (ioctl).  The report gives each stage's VM exits
      and hypercalls per message (KVM's counters, QMP query-stats).

      --transport relay: the relay baseline, without kvmq: the stream
      goes from guest to guest through the VMMs, over virtio-serial ports
      whose QEMUs are joined by socket pairs (see RELAY_PORT below).
      --trace: where each stage's vCPU thread spends the stream, from the
      host's tracepoints (class Trace), and each QEMU's CPU time.

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
import re
import signal
import socket
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
RING_DEFAULT = 16       # the device's rx-entries
RING_EVENT = 1          # rx-entries with an event
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
echo "PLAY-GOT: $st"
blocks /tmp/out.1 $(($(wc -c </tmp/out.0) / 2097152))
echo "PLAY-SUM: $(cat /tmp/out.0 /tmp/out.1 | sha256sum | cut -d' ' -f1) \\
$(($(wc -c </tmp/out.0) + $(wc -c </tmp/out.1)))"
""" + DONE

# The relay baseline: the same stream from guest to guest through the
# VMMs.  Each hop is a virtio-serial port in both guests whose QEMUs are
# joined by a socket (a socketpair the management script made): the
# sender's QEMU copies the guest's buffers into the socket, the receiver's
# QEMU copies them out into its guest's.  kvmq only says "go".  A port
# gives no end of file, so each stage is told the length (@SIZE@).
RELAY_PORT = """
port() {
	for f in /sys/class/virtio-ports/*; do
		[ "$(cat "$f/name")" = "$1" ] && echo "/dev/${f##*/}"
	done
}
"""
RELAY_READ = WAIT_PEER.replace("@PEER@", "decode") + RELAY_PORT + """
dd if=/root/audio.wav of="$(port kvmq.out)" bs=262144 2>/tmp/err
st=$?
""" + DONE
RELAY_DECODE = WAIT_PEER.replace("@PEER@", "play") + RELAY_PORT + """
kvmq-gain 3/2 @SKIP@ @SIZE@ <"$(port kvmq.in)" >"$(port kvmq.out)" 2>/tmp/err
st=$?
""" + DONE
RELAY_PLAY = WAIT_PEER.replace("@PEER@", "decode") + RELAY_PORT + \
    PLAY_BLOCKS + """
head -c @SIZE@ <"$(port kvmq.in)" >/tmp/out.1 2>/tmp/err
st=$?
echo "PLAY-GOT: $st"
blocks /tmp/out.1 0
echo "PLAY-SUM: $(sha256sum </tmp/out.1 | cut -d' ' -f1) $(wc -c </tmp/out.1)"
""" + DONE
TRANSPORTS = ("kvmq", "relay")


def relay_args(ports):
    """QEMU arguments of a virtio-serial device with a port NAME on the
    socket FD, for each (NAME, FD) of ports."""
    args = ["-device", "virtio-serial-pci,id=vs"]
    for name, fd in ports:
        args += ["-chardev", "socket,id=%s,fd=%d" % (name, fd),
                 "-device", "virtserialport,bus=vs.0,chardev=%s,name=kvmq.%s"
                 % (name, name)]
    return args


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


TRACEFS = "/sys/kernel/tracing"
TRACE_EVENTS = ("kvm/kvm_entry", "kvm/kvm_exit", "kvm/kvm_userspace_exit",
                "kvmq/kvmq_hypercall", "kvmq/kvmq_hypercall_done")
TRACE_LINE = re.compile(r"^\s*.*?-(\d+)\s+\[\d+\]\s+(?:\S+\s+)?"
                        r"([\d.]+): (\w+): (.*)$")


class Trace:
    """Where each guest's vCPU thread spends the stream, from the host's
    tracepoints: kvm_entry to kvm_exit is time in the guest; kvm_exit to
    the next kvm_entry is time out of it, counted under the exit's reason
    ("hlt": halted, waiting for something to arrive), or under "QEMU" if
    the vCPU returned to QEMU on the way (kvm_userspace_exit); the time
    between kvmq_hypercall and kvmq_hypercall_done is kvmq's share of the
    "hypercall" exits.  Also each QEMU's CPU time: its vCPU thread, and the
    rest of the process (its main loop, which does the copying of the
    relay baseline)."""

    def __init__(self):
        if not os.path.exists(os.path.join(TRACEFS, "trace")):
            subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS],
                           check=True)
        self.write("tracing_on", "0")
        self.write("trace_clock", "mono")
        self.write("buffer_size_kb", "16384")
        self.write("set_event", "")
        for e in TRACE_EVENTS:
            self.write("events/%s/enable" % e, "1")
        self.write("trace", "")

    @staticmethod
    def write(name, text):
        with open(os.path.join(TRACEFS, name), "w") as f:
            f.write(text)

    @staticmethod
    def cpu_time(path):
        """utime + stime of /proc/PID[/task/TID]/stat, in seconds."""
        try:
            with open(path) as f:
                w = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(w[11]) + int(w[12])) / os.sysconf("SC_CLK_TCK")

    def start(self, guests):
        """guests: {name: kvmq_host.Guest}."""
        self.threads = {}
        for name, g in guests.items():
            for c in g.qmp.cmd("query-cpus-fast"):
                self.threads[c["thread-id"]] = name
        self.procs = {n: g.proc.pid for n, g in guests.items()}
        self.cpu0 = self.cpu_now()
        self.t0 = time.monotonic()
        self.write("tracing_on", "1")

    def cpu_now(self):
        r = {}
        for name, pid in self.procs.items():
            tids = [t for t, n in self.threads.items() if n == name]
            vcpu = [self.cpu_time("/proc/%d/task/%d/stat" % (pid, t))
                    for t in tids]
            r[name] = (self.cpu_time("/proc/%d/stat" % pid),
                       None if None in vcpu else sum(vcpu))
        return r

    def stop(self):
        """Stop tracing; what trace_report() prints: "wall" (seconds
        traced), "overrun" (events lost), and per guest "time" (seconds
        per category: "guest", an exit reason, "QEMU", "before" for an
        exit that began before the trace; "kvmq" is part of "hypercall")
        and "cpu" (seconds of the process, of its vCPU threads)."""
        self.write("tracing_on", "0")
        t1 = time.monotonic()
        wall = t1 - self.t0
        cpu1 = self.cpu_now()
        overrun = 0
        for cpu in os.listdir(os.path.join(TRACEFS, "per_cpu")):
            with open(os.path.join(TRACEFS, "per_cpu", cpu, "stats")) as f:
                for line in f:
                    if line.startswith("overrun:"):
                        overrun += int(line.split()[1])
        state = {}      # tid: (what, since), what "guest" or an exit reason
        kvmq_in = {}    # tid: when its kvmq hypercall began
        acc = {}        # name: {category: seconds}
        with open(os.path.join(TRACEFS, "trace")) as f:
            for line in f:
                m = TRACE_LINE.match(line)
                if not m:
                    continue
                tid, ts, ev, rest = int(m[1]), float(m[2]), m[3], m[4]
                name = self.threads.get(tid)
                if name is None:
                    continue
                a = acc.setdefault(name, {})
                prev = state.get(tid)
                if prev is None:
                    # What the thread did from the start of the trace.
                    prev = ("guest", self.t0) if ev == "kvm_exit" else \
                        ("before", self.t0) if ev == "kvm_entry" else \
                        ("QEMU", self.t0) if ev == "kvm_userspace_exit" \
                        else ("hypercall", self.t0)
                    state[tid] = prev
                if ev == "kvm_exit":
                    if prev and prev[0] == "guest":
                        a["guest"] = a.get("guest", 0) + ts - prev[1]
                    w = rest.split()
                    reason = w[w.index("reason") + 1] if "reason" in w \
                        else "?"
                    state[tid] = (reason, ts)
                elif ev == "kvm_userspace_exit" and prev and \
                        prev[0] != "guest":
                    state[tid] = ("QEMU", prev[1])
                elif ev == "kvm_entry":
                    if prev and prev[0] != "guest":
                        a[prev[0]] = a.get(prev[0], 0) + ts - prev[1]
                    state[tid] = ("guest", ts)
                elif ev == "kvmq_hypercall":
                    kvmq_in[tid] = ts
                elif ev == "kvmq_hypercall_done" and tid in kvmq_in:
                    a["kvmq"] = a.get("kvmq", 0) + ts - kvmq_in.pop(tid)
        # ... and until its end; a thread without an event was out of its
        # guest all along.
        for tid, name in self.threads.items():
            a = acc.setdefault(name, {})
            what, since = state.get(tid, ("before", self.t0))
            a[what] = a.get(what, 0) + t1 - since
        self.write("set_event", "")
        self.write("trace", "")
        self.write("buffer_size_kb", "1408")
        r = {"wall": wall, "overrun": overrun, "guests": {}}
        for name in self.procs:
            c0, c1 = self.cpu0[name], cpu1[name]
            cpu = tuple(None if x is None or y is None else y - x
                        for x, y in zip(c0, c1))
            r["guests"][name] = {"time": acc.get(name, {}), "cpu": cpu}
        return r


def trace_report(t):
    """Print Trace.stop()'s breakdown."""
    print("  where the time goes (each guest's vCPU thread, host "
          "tracepoints, %.1f s traced%s):" %
          (t["wall"], ", %d events lost" % t["overrun"]
           if t["overrun"] else ""))
    for name, g in t["guests"].items():
        tm = g["time"]
        total = sum(v for k, v in tm.items() if k != "kvmq") or 1e-9
        top = sorted(((v, k) for k, v in tm.items()
                      if k not in ("guest", "kvmq")), reverse=True)
        parts = ["in the guest %.0f%%" % (100 * tm.get("guest", 0) / total)]
        for v, k in top[:4]:
            what = {"hlt": "halted", "npf": "nested page faults",
                    "before": "out since before the trace",
                    "hypercall": "hypercalls",
                    "interrupt": "host interrupts",
                    "QEMU": "in QEMU"}.get(k, "exit " + k)
            parts.append("%s %.0f%%" % (what, 100 * v / total))
            if k == "hypercall":
                parts[-1] += " (kvmq %.0f%%)" % (100 * tm.get("kvmq", 0) /
                                                 total)
        rest = sum(v for v, k in top[4:])
        if rest:
            parts.append("other exits %.0f%%" % (100 * rest / total))
        print("    %-7s %s" % (name, ", ".join(parts)))
        proc, vcpu = g["cpu"]
        if proc is not None and vcpu is not None:
            print("            CPU: vCPU thread %.1f s, rest of QEMU %.1f s"
                  % (vcpu, proc - vcpu))


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
             decode_send="uring", read_kind="blocks", transport="kvmq",
             trace=False):
    """Run the pipeline; a dict of what happened, "ok" the verdict."""
    guests, socks = [], []
    try:
        return run_guests(d, event, at, depth, quiet, guests, decode_send,
                          read_kind, transport, trace, socks)
    finally:
        for g in guests:
            g.kill()
        for x in socks:
            x.close()


def run_guests(d, event, at, depth, quiet, guests, decode_send, read_kind,
               transport, trace, socks):
    qemu = os.environ["KVMQ_QEMU"]
    kernel = os.environ["KVMQ_GUEST_KERNEL"]
    top = os.environ.get("KVMQ_TOP", os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "../.."))
    if event is not None and event not in EVENTS:
        raise ValueError("unknown event %r" % event)
    if transport not in TRANSPORTS or (event and transport != "kvmq"):
        raise ValueError("transport %r%s" % (
            transport, " with an event" if event else ""))
    relay = transport == "relay"
    if depth is None:
        depth = 1 if event else 8
    ring = RING_EVENT if event else RING_DEFAULT
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
         "depth": depth, "ring": ring, "timeline": [],
         "transport": transport}
    if event and not ref_blocks:
        print("pipeline: FAIL: %s has no audio.blocks (run prepare)" % d)
        return r
    if event and nblocks < at_msgs + 2 * (depth + ring) + 1:
        print("pipeline: FAIL: %d blocks: too few for an event after %d "
              "with queues of depth %d and rings of %d" %
              (nblocks, at_msgs, depth, ring))
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

    # With an event, each queue holds depth messages in the kernel and
    # RING_EVENT in its receive ring: few, so that the stream is still in
    # flight when the event comes.
    def guest(name, ident, rd, group, ports=()):
        return kvmq_host.Guest(qemu, kernel, rd, name, ident, group,
                               "sh /root/run.sh", work, aperture="64M",
                               depth=depth, rx_entries=ring,
                               extra_args=relay_args(ports),
                               extra_fds=[fd for _, fd in ports])

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
    ports = {"read": (), "decode": (), "play": ()}
    if relay:
        gain = os.environ.get("KVMQ_GAIN",
                              os.path.join(top, "tools/kvmq/kvmq-gain"))
        rds = {"read": initrd("read", RELAY_READ, [wav + ":/root/audio.wav"]),
               "decode": initrd("decode", RELAY_DECODE
                                .replace("@SKIP@", str(HEADER))
                                .replace("@SIZE@", str(size)),
                                [gain + ":/bin/kvmq-gain"]),
               "play": initrd("play", RELAY_PLAY.replace("@SIZE@",
                                                         str(size)))}
        a = socket.socketpair()
        b = socket.socketpair()
        socks += list(a) + list(b)
        ports = {"read": (("out", a[0].fileno()),),
                 "decode": (("in", a[1].fileno()), ("out", b[0].fileno())),
                 "play": (("in", b[1].fileno()),)}

    print("pipeline: %d bytes of WAV from read to decode to play%s%s" %
          (size, ", event %s after %d MiB at play, queues of depth %d" %
           (event, at_msgs * BLOCK >> 20, depth) if event else "",
           " through the VMMs (virtio-serial, the relay baseline)"
           if relay else ""))
    group = kvmq_host.create_group()
    try:
        for name, ident in (("read", 1), ("decode", 2), ("play", 3)):
            guests.append(guest(name, ident, rds[name], group,
                                ports[name]))
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
    for x in socks:
        x.close()
    socks.clear()
    for st in stages.values():
        st.exits0 = vcpu_exits(st.g)
    tracer = None
    if trace:
        tracer = Trace()
        tracer.start({g.name: g for g in guests})
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
        el = max(now(), 1e-3)
        if relay:
            return "pipeline: %5.0f s  through the VMMs" % el
        qs = {n: st.stats() for n, st in stages.items()}
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
    r["stream"] = None
    if not failed and event != "kill-play":
        if wait(lambda: play.wait_line("PLAY-GOT", 0), BOOT * 2) is None:
            failed = "play did not receive the stream"
        else:
            r["stream"] = now()
    if tracer:
        r["trace"] = tracer.stop()
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
    if relay:
        r["sent_blocks"] = nblocks if codes["read"] == "0" else 0
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
        # Lost: what decode held (its queue and ring, one in its forward).
        bound = depth + ring + 1
        ok = ok and codes["read"] == "0" and codes["decode"] == "0" and \
            codes["play"] == "0" and r["sent_blocks"] == nblocks and \
            r["verified"] == r["delivered"] and r["lost"] <= bound
    elif event == "kill-play":
        # Not delivered: play's queue and ring, the block decode's forward
        # held, decode's queue and ring.
        bound = 2 * (depth + ring) + 1
        ok = ok and codes["decode"] == "1" and \
            any("No such file or directory" in x for x in logs["decode"]) \
            and r["verified"] == r["delivered"] == at_msgs and \
            r["lost"] <= bound
    else:
        # Not delivered: the block decode's forward held, decode's queue
        # and ring.
        bound = depth + ring + 1
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
        print("  delivered to play:   %d bytes in %.1f s, %s" %
              (got_len, r["stream"] or elapsed,
               "the reference exactly" if r["whole"] else
               "not the whole reference"))
        if r["stream"]:
            print("                       %.2f MiB/s; play hashed it by "
                  "%.1f s" % (size / 2**20 / max(r["stream"], 1e-3),
                              elapsed))
    print("  blocks of 2 MiB:     %d in the WAV, %d sent by read, %d "
          "delivered to play, %d verified against the reference%s" %
          (nblocks, r["sent_blocks"], r["delivered"], r["verified"],
           "" if ref_blocks else " (no audio.blocks)"))
    if event:
        lost = [i for i in range(r["sent_blocks"]) if i not in got_idx]
        q = "queue (depth %d) and receive ring (%d)" % (depth, ring)
        print("  not delivered:       %d block(s) %s, at most %d: %s" %
              (r["lost"], lost, bound,
               {"reboot-decode": "decode's %s and the block its forward "
                "held, lost with its VM" % q,
                "kill-play": "play's %s, the block decode's forward held, "
                "decode's %s" % (q, q),
                "revoke": "the block decode's forward held and decode's %s"
                % q}[event]))
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
          ("through its virtio-serial port" if relay else
           "io_uring, lazy entries of its vCPU's submission ring"
           if uring else "one KVMQ_HC_SEND hypercall each",
           " (%s)" % ulog[-1].split("io_uring: ", 1)[1] if ulog else ""))
    r["per_msg"], r["per_mib"] = {}, {}
    for n in ("read", "decode", "play"):
        s = stats[n]
        msgs = s["sent"] + s["received"]
        e = exits[n]
        if e is not None and msgs and not relay:
            r["per_msg"][n] = (e[0] / msgs, e[1] / msgs)
        if e is not None:
            r["per_mib"][n] = e[0] / (size / 2**20)
        print("  %-7s sent %4d msgs %9d B, received %4d msgs %9d B, "
              "interrupts %4d" %
              (n, s["sent"], s["sent-bytes"], s["received"],
               s["received-bytes"], s["notified"] + s["room-notified"]))
        print("          while it ran: VM exits %s, hypercalls %s%s%s" %
              ("n/a" if e is None else e[0], "n/a" if e is None else e[1],
               " (per message: %.1f exits, %.2f hypercalls)" %
               r["per_msg"][n] if n in r["per_msg"] else "",
               "; %.1f exits per MiB" % r["per_mib"][n]
               if n in r["per_mib"] else ""))
    print("  pages moved without copying: %d (%d MiB)" %
          (after["pages_moved"] - before["pages_moved"],
           (after["pages_moved"] - before["pages_moved"]) * 4096 // 2**20))
    print("  bytes copied:        %d by kvmq%s" %
          (after["bytes_copied"] - before["bytes_copied"],
           "; the stream itself went through the VMMs: at each of the 2 "
           "hops, the sender's QEMU copied it out of its guest and the "
           "receiver's QEMU into its guest" if relay else ""))
    print("  host pool after:     %d pages (before: %d)" %
          (after["aperture_pages"], before["aperture_pages"]))
    if "trace" in r:
        trace_report(r["trace"])
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


# compare: the same stream four ways, one after the other in one test host.
COMPARE = (
    ("blocks", "uring", "kvmq", "blocks moved, decode through io_uring"),
    ("blocks", "ioctl", "kvmq", "blocks moved, decode a hypercall per send"),
    ("bytes", "uring", "kvmq", "2 KiB messages copied by kvmq"),
    ("blocks", "uring", "relay", "relay through the VMMs (virtio-serial)"),
)


def compare(d, trace=False):
    """Run the pipeline each way of COMPARE; print them side by side."""
    rows = []
    for kind, send, transport, what in COMPARE:
        print("compare: %s" % what, flush=True)
        r = pipeline(d, quiet=True, decode_send=send, read_kind=kind,
                     transport=transport, trace=trace)
        rows.append((what, r))
    print("")
    print("compare (test-host figures: nested KVM under TCG; compare the "
          "rows, not the machines%s)" %
          ("; traced, which slows every row" if trace else ""))
    print("  s: from go until play had the whole stream (before its "
          "hashing)")
    print("  %-42s %5s %6s %5s %6s  %-17s  %s" %
          ("run", "s", "MiB/s", "moved", "copied",
           "exits/MiB r,d,p", "exits / hypercalls per message: r, d, p"))
    for what, r in rows:
        if not r.get("stream"):
            print("  %-42s did not run to its end" % what)
            continue
        pm, pb = r.get("per_msg", {}), r.get("per_mib", {})
        print("  %-42s %5.1f %6.2f %5.1f %6.1f  %-17s  %s%s" %
              (what, r["stream"], r["size"] / 2**20 / max(r["stream"],
                                                          1e-3),
               r["pages_moved"] * 4096 / 2**20, r["bytes_copied"] / 2**20,
               ",".join("%.0f" % pb[n] if n in pb else "n/a"
                        for n in ("read", "decode", "play")),
               ", ".join("%.1f / %.2f" % pm[n] if n in pm else "n/a"
                         for n in ("read", "decode", "play")),
               "" if r["ok"] else "  FAIL"))
    print("  moved and copied: MiB, by kvmq; the relay's copies are the "
          "VMMs' (4 per byte)")
    if trace:
        for what, r in rows:
            if "trace" in r:
                print("  %s:" % what)
                trace_report(r["trace"])
    ok = all(r["ok"] for _, r in rows)
    print("compare: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


def run(d, quiet=False, event=None, at=2, depth=None, decode_send="uring",
        transport="kvmq", trace=False):
    """Run the pipeline; 0 if it passed, else 1."""
    return 0 if pipeline(d, event, at, depth, quiet, decode_send,
                         transport=transport, trace=trace)["ok"] else 1


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
    p.add_argument("--transport", choices=TRANSPORTS, default="kvmq")
    p.add_argument("--trace", action="store_true")
    p = sub.add_parser("compare")
    p.add_argument("dir")
    p.add_argument("--trace", action="store_true")
    a = ap.parse_args()
    if a.cmd == "prepare":
        prepare(a.dir, a.mib)
        return 0
    if a.cmd == "compare":
        return compare(a.dir, a.trace)
    return 0 if pipeline(a.dir, a.event, a.at, a.depth, False,
                         a.decode_send, a.read_kind, a.transport,
                         a.trace)["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
