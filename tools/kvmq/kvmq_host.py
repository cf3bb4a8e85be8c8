# SPDX-License-Identifier: GPL-2.0
"""kvmq_host - manage a group of kvmq VMs under QEMU, from the host.

What a management process does (Documentation/qemu.rst): create a kvmq
group (/dev/kvmq, KVMQ_CREATE_GROUP), start each QEMU with the group's file
descriptor and a kvmq-pci device, then, over QMP, tell each guest its peers
(kvmq-post into queue 0), grant the senders (kvmq-grant), and watch
(query-kvmq).

Used by the tests and the demo; needs only Python's standard library.
"""

import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import tempfile
import time

KVMQ_TYPE = 0xB9
KVMQ_CREATE_GROUP = (KVMQ_TYPE << 8) | 0x02      # _IO(KVMQ_TYPE, 0x02)
DEBUGFS = "/sys/kernel/debug/kvmq"


class QmpError(Exception):
    """A QMP command failed; str() is QEMU's description."""


def create_group():
    """A new kvmq group's file descriptor, inheritable by children."""
    dev = os.open("/dev/kvmq", os.O_RDWR | os.O_CLOEXEC)
    try:
        arg = bytearray(struct.pack("=II", 8, 0))
        fd = fcntl.ioctl(dev, KVMQ_CREATE_GROUP, arg, True)
    finally:
        os.close(dev)
    # ioctl() returns the ioctl's result: the group's new descriptor.
    if not isinstance(fd, int) or fd < 0:
        raise OSError("KVMQ_CREATE_GROUP returned %r" % (fd,))
    os.set_inheritable(fd, True)
    return fd


def debugfs_stat(name):
    """A host-wide kvmq counter, e.g. aperture_pages (pages kvmq holds)."""
    with open(os.path.join(DEBUGFS, name)) as f:
        return int(f.read())


class Qmp:
    """A minimal QMP client over a Unix socket."""

    def __init__(self, path, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.settimeout(timeout)
        self.buf = b""
        self._read()                    # the greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            while b"\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise EOFError("QMP connection closed")
                self.buf += data
            line, self.buf = self.buf.split(b"\n", 1)
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        resp = self._read()
        if "error" in resp:
            raise QmpError(resp["error"]["desc"])
        return resp["return"]

    def close(self):
        self.sock.close()


class Guest:
    """One QEMU running a Linux guest with a kvmq-pci device (none if
    group_fd is None).

    The guest runs `cmd` (kvmq guest initramfs: kvmqg.run) and powers off;
    its console goes to `self.log`.  QEMU starts paused (-S) so that the
    VMM can post and grant before the guest runs; call start().
    extra_args are more QEMU arguments, extra_fds the file descriptors
    they name, which QEMU inherits.
    """

    def __init__(self, qemu, kernel, initrd, name, identity, group_fd,
                 cmd, workdir, queues=1, depth=64, aperture="64M",
                 quota=None, mem="256M", extra_append="",
                 cpu="qemu64", reboot=False, rings=True, rx_entries=None,
                 extra_args=(), extra_fds=()):
        self.name = name
        self.identity = identity
        self.sock = os.path.join(workdir, name + ".qmp")
        self.log = os.path.join(workdir, name + ".log")
        devargs = []
        if group_fd is not None:
            dev = "kvmq-pci,id=kvmq0,group=%d,identity=%d,queues=%d," \
                  "depth=%d,aperture=%s" % (group_fd, identity, queues,
                                            depth, aperture)
            if quota:
                dev += ",quota=%s" % quota
            if not rings:
                dev += ",rings=off"
            elif rx_entries:
                dev += ",rx-entries=%d" % rx_entries
            devargs = ["-device", dev]
        # -no-reboot: a guest that reboots (or panics) ends; with reboot,
        # a reset (QMP system_reset, a guest reboot) boots it again.
        rb = [] if reboot else ["-no-reboot"]
        append = "console=ttyS0 loglevel=4 panic=-1 panic_on_warn=1 " \
                 "oops=panic %s kvmqg.run=\"%s\"" % (extra_append, cmd)
        self.argv = [
            qemu, "-L", "/usr/share/seabios", "-L", "/usr/share/qemu",
            "-machine", "q35", "-accel", "kvm", "-cpu", cpu,
            "-m", mem, "-smp", "1", "-nodefaults", "-display", "none",
            "-S",
            "-chardev", "file,id=con,path=" + self.log,
            "-serial", "chardev:con",
            "-kernel", kernel, "-initrd", initrd, "-append", append,
        ] + rb + devargs + list(extra_args) + [
            "-qmp", "unix:%s,server=on,wait=off" % self.sock,
        ]
        open(self.log, "w").close()
        fds = ((group_fd,) if group_fd is not None else ()) + \
            tuple(extra_fds)
        self.proc = subprocess.Popen(self.argv, pass_fds=fds,
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        try:
            self.qmp = Qmp(self.sock)
        except Exception:
            self.kill()
            raise

    def start(self):
        self.qmp.cmd("cont")

    def post(self, text, queue=0):
        self.qmp.cmd("kvmq-post", device="kvmq0", queue=queue, data=text)

    def grant(self, sender, queue=1):
        self.qmp.cmd("kvmq-grant", device="kvmq0", queue=queue,
                     sender=sender)

    def revoke(self, sender, queue=1):
        self.qmp.cmd("kvmq-revoke", device="kvmq0", queue=queue,
                     sender=sender)

    def query(self):
        return self.qmp.cmd("query-kvmq")[0]

    def received(self):
        """Messages the guest received so far (query-kvmq)."""
        return self.query()["stats"]["received"]

    def reset(self):
        self.qmp.cmd("system_reset")

    def console(self):
        with open(self.log, errors="replace") as f:
            return f.read().replace("\r", "")

    def wait_line(self, prefix, timeout):
        """The rest of the first console line that starts with prefix."""
        deadline = time.monotonic() + timeout
        while True:
            # Whole lines only: the serial port writes the file a
            # character at a time.
            text = self.console()
            for line in text[:text.rfind("\n") + 1].splitlines():
                if line.startswith(prefix):
                    return line[len(prefix):].strip()
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return None
            time.sleep(0.2)

    def wait_exit(self, timeout):
        """The guest command's exit status (KVMQG-EXIT), or None."""
        st = self.wait_line("KVMQG-EXIT:", timeout)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        return None if st is None else int(st)

    def qemu_output(self):
        if self.proc.stdout is None:
            return ""
        r, _, _ = select.select([self.proc.stdout], [], [], 0)
        return self.proc.stdout.read().decode(errors="replace") if r else ""

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait()
        try:
            self.qmp.close()
        except AttributeError:
            pass


def workdir():
    return tempfile.mkdtemp(prefix="kvmq-l2.")
