#!/bin/bash
# mkguest-initramfs.sh - build the busybox initramfs of a kvmq L2 guest.
# Usage: scripts/mkguest-initramfs.sh OUT.cpio.gz [EXTRA_FILE[:DEST]...]
# Contents: busybox (static, from Debian's busybox-static, which
# scripts/deps.sh installs: /bin/busybox), /lib/modules/kvmq_guest.ko,
# /bin/kvmq (the static CLI), /init (scripts/guest-init.sh).  Each
# EXTRA_FILE is copied to DEST, an absolute path in the initramfs
# (default: /root/ and its name), keeping its mode.
# Build the driver and the CLI first: make guest.  Other builds of them:
#   KVMQG_KO=path/to/kvmq_guest.ko  KVMQG_CLI=path/to/kvmq
# Boot with console=ttyS0 and kvmqg.run="COMMAND" (guest-init.sh).
# The guest must run the kernel the driver was built for ($KVER, the one
# of scripts/kvmq-env.sh): its drivers for the console, PCI and MSI-X are
# built in.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
top=$(dirname "$here")

out=${1:?usage: mkguest-initramfs.sh OUT.cpio.gz [EXTRA_FILE[:DEST]...]}
shift
out=$(readlink -f "$out")
ko=${KVMQG_KO:-$top/guest/kvmq_guest.ko}
cli=${KVMQG_CLI:-$top/tools/kvmq/kvmq}
busybox=${KVMQG_BUSYBOX:-/bin/busybox}

die() { echo "mkguest-initramfs: $*" >&2; exit 1; }
[ -f "$ko" ] || die "$ko missing: run make guest"
[ -x "$cli" ] || die "$cli missing: run make guest"
[ -x "$busybox" ] || die "$busybox missing: run scripts/deps.sh (busybox-static)"
# A dynamic busybox (Debian's busybox package) would not run without its libc.
if LC_ALL=C file -L "$busybox" 2>/dev/null | grep -q 'dynamically linked' ||
	LC_ALL=C file -L "$cli" 2>/dev/null | grep -q 'dynamically linked'; then
	die "$busybox and $cli must be static (busybox-static, make guest)"
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,dev,proc,sys,tmp,root,lib/modules}
cp "$busybox" "$root/bin/busybox"
# Applet links are made at boot by `busybox --install -s`; sh is needed first.
ln -s busybox "$root/bin/sh"
install -m 755 "$here/guest-init.sh" "$root/init"
install -m 644 "$ko" "$root/lib/modules/kvmq_guest.ko"
install -m 755 "$cli" "$root/bin/kvmq"
for x in "$@"; do
	src=${x%%:*}
	dest=/root/$(basename "$src")
	[ "$src" = "$x" ] || dest=${x#*:}
	case "$dest" in /*) ;; *) die "$x: DEST must be an absolute path" ;; esac
	[ -f "$src" ] || die "$src: no such file"
	mkdir -p "$root$(dirname "$dest")"
	cp -p "$src" "$root$dest"
done
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 >"$out.tmp"
mv "$out.tmp" "$out"
echo "mkguest-initramfs: wrote $out ($(du -h "$out" | cut -f1))"
