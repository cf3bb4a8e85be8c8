#!/bin/bash
# deps.sh - idempotent set-up of everything the kvmq tests need (run as root):
#   Debian packages, the unsigned kernel image for the test VM (extracted to
#   $IMGDIR), the linux-source tree ($KSRC) with `make headers` done.
# Fast (well under 2 s) when everything is already in place.
# Usage: scripts/deps.sh
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")

updated=0
apt_update() {
	[ "$updated" = 1 ] && return 0
	echo "deps: apt-get update"
	apt-get update -qq
	updated=1
}

# Resolving KVER needs apt's package lists; fetch them once if that fails.
# shellcheck source-path=SCRIPTDIR source=kvmq-env.sh
. "$here/kvmq-env.sh" 2>/dev/null || { apt_update; . "$here/kvmq-env.sh"; }
mkdir -p "$KVMQ_CACHE"

pkgs=(linux-headers-"$KVER" linux-source-6.12 qemu-system-x86 busybox-static
	xz-utils cpio make gcc libc6-dev flex bison bc rsync perl kmod file python3
	liburing-dev)
have=$(dpkg-query -W -f '${db:Status-Status}\n' "${pkgs[@]}" 2>/dev/null |
	grep -c '^installed$' || true)
if [ "$have" != "${#pkgs[@]}" ]; then
	apt_update
	echo "deps: installing packages"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${pkgs[@]}"
else
	echo "deps: packages ok"
fi

# Kernel image + modules for the test VM.  Extract via a temporary directory
# so an interrupted run never leaves a half-populated $IMGDIR behind.
if [ ! -e "$IMGDIR/.kvmq-extracted" ]; then
	debs=("$KVMQ_CACHE"/linux-image-"$KVER"-unsigned_*_amd64.deb)
	if [ ! -e "${debs[-1]}" ]; then
		echo "deps: downloading linux-image-$KVER-unsigned"
		# apt warns that _apt cannot access the directory (it downloads as
		# root instead); harmless, so only show the log if it fails.
		(cd "$KVMQ_CACHE" && apt-get download -q "linux-image-$KVER-unsigned" \
			>"$KVMQ_CACHE/download.log" 2>&1) || { cat "$KVMQ_CACHE/download.log" >&2; exit 1; }
		debs=("$KVMQ_CACHE"/linux-image-"$KVER"-unsigned_*_amd64.deb)
	fi
	deb=${debs[-1]}
	echo "deps: extracting $(basename "$deb") to $IMGDIR"
	rm -rf "$IMGDIR" "$IMGDIR.tmp"
	dpkg-deb -x "$deb" "$IMGDIR.tmp"
	touch "$IMGDIR.tmp/.kvmq-extracted"
	mv "$IMGDIR.tmp" "$IMGDIR"
else
	echo "deps: kernel image ok ($IMGDIR)"
fi

# linux-source tree (KVM selftest library) with exported uapi headers.
if [ ! -e "$KSRC/.kvmq-extracted" ]; then
	if [ "$KSRC" != "$KVMQ_CACHE/linux-source-6.12" ]; then
		echo "deps: KSRC=$KSRC is not an extracted tree (no .kvmq-extracted)" >&2
		exit 1
	fi
	echo "deps: extracting linux-source-6.12 to $KSRC (takes a minute)"
	rm -rf "$KSRC" "$KVMQ_CACHE/.src.tmp"
	mkdir -p "$KVMQ_CACHE/.src.tmp"
	tar -xf /usr/src/linux-source-6.12.tar.xz -C "$KVMQ_CACHE/.src.tmp"
	touch "$KVMQ_CACHE/.src.tmp/linux-source-6.12/.kvmq-extracted"
	mv "$KVMQ_CACHE/.src.tmp/linux-source-6.12" "$KSRC"
	rmdir "$KVMQ_CACHE/.src.tmp"
else
	echo "deps: linux source ok ($KSRC)"
fi
if [ ! -e "$KSRC/.kvmq-headers" ]; then
	echo "deps: make headers in $KSRC"
	make -s -C "$KSRC" headers
	touch "$KSRC/.kvmq-headers"
else
	echo "deps: source headers ok"
fi
