#!/bin/bash
# debug-kernel.sh - build the kernel of the kvmq debug test host: Debian's
# linux-source-6.12 with lockdep, KASAN, kmemleak, debug objects, fault
# injection, ... (scripts/debug.config merged onto x86_64 defconfig),
# everything the test host needs built in.  In $KVMQ_DEBUG_BUILD:
#   src/  an extraction of /usr/src/linux-source-6.12.tar.xz of its own:
#         $KSRC has "make headers" done in it, which an O= build refuses
#   obj/  the build (make O=obj): arch/x86/boot/bzImage, and the tree to
#         build kvmq against (make -C obj M=...)
# Cached: nothing is done when the fragment, this script and the installed
# linux-source-6.12 are those of the last successful build ("up to date",
# well under a second); a changed fragment rebuilds incrementally, a new
# source package from scratch.
# Usage: scripts/debug-kernel.sh [--check]
#   --check  build nothing: exit 0 if the kernel is up to date, else 1
# Environment: KVMQ_DEBUG_BUILD (default $KVMQ_CACHE/debug-build),
#   KVMQ_DEBUG_JOBS (make -j, default 2; the build runs under nice -n 19)
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source-path=SCRIPTDIR source=kvmq-env.sh
. "$here/kvmq-env.sh"

build=${KVMQ_DEBUG_BUILD:-$KVMQ_CACHE/debug-build}
src=$build/src obj=$build/obj
frag=$here/debug.config
tarball=/usr/src/linux-source-6.12.tar.xz
jobs=${KVMQ_DEBUG_JOBS:-2}

stamp() {
	printf '%s\n' "linux-source-6.12 $(dpkg-query -W -f '${Version}' linux-source-6.12)" \
		"$(sha256sum <"$frag")" "$(sha256sum <"$0")"
}
up_to_date() {
	[ -e "$obj/arch/x86/boot/bzImage" ] && [ -e "$obj/Module.symvers" ] &&
		[ "$(cat "$obj/.kvmq-stamp" 2>/dev/null)" = "$(stamp 2>/dev/null)" ]
}
if [ "${1:-}" = --check ]; then
	if up_to_date; then
		echo "debug-kernel: up to date ($obj)"
		exit 0
	fi
	echo "debug-kernel: not built, or out of date ($obj)"
	exit 1
fi

# Build tools beyond deps.sh's: objtool needs libelf, certs/ needs libssl.
pkgs=(libelf-dev libssl-dev)
if [ "$(dpkg-query -W -f '${db:Status-Status}\n' "${pkgs[@]}" 2>/dev/null |
	grep -c '^installed$' || true)" != "${#pkgs[@]}" ]; then
	echo "debug-kernel: installing ${pkgs[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${pkgs[@]}"
fi
[ -e "$tarball" ] || "$here/deps.sh"

srcver=$(dpkg-query -W -f '${Version}' linux-source-6.12)
if up_to_date; then
	echo "debug-kernel: up to date ($obj)"
	exit 0
fi

# The source tree, extracted once per source package version.  A new
# version starts the build over: the tarball's old mtimes would not
# outdate the objects.
if [ "$(cat "$src/.kvmq-extracted" 2>/dev/null)" != "$srcver" ]; then
	echo "debug-kernel: extracting linux-source-6.12 $srcver to $src"
	rm -rf "$src" "$build/src.tmp" "$obj"
	mkdir -p "$build/src.tmp"
	tar -xf "$tarball" -C "$build/src.tmp"
	echo "$srcver" >"$build/src.tmp/linux-source-6.12/.kvmq-extracted"
	mv "$build/src.tmp/linux-source-6.12" "$src"
	rmdir "$build/src.tmp"
fi

# The configuration: defconfig + fragment.  An unchanged result keeps the
# old .config (and its mtime), so make has nothing to redo.
mkdir -p "$obj"
[ -e "$obj/.config" ] && cp -p "$obj/.config" "$obj/.config.kvmq-prev"
make -s -C "$src" O="$obj" x86_64_defconfig >/dev/null
(cd "$src" && scripts/kconfig/merge_config.sh -m -O "$obj" "$obj/.config" "$frag") \
	>"$obj/merge_config.log" 2>&1 ||
	{ cat "$obj/merge_config.log" >&2; exit 1; }
make -s -C "$src" O="$obj" olddefconfig >/dev/null
if [ -e "$obj/.config.kvmq-prev" ] && cmp -s "$obj/.config" "$obj/.config.kvmq-prev"; then
	mv "$obj/.config.kvmq-prev" "$obj/.config"
else
	rm -f "$obj/.config.kvmq-prev"
fi
# Every option of the fragment must have survived: Kconfig drops what
# conflicts or lacks a dependency without an error.
bad=0
while IFS= read -r line; do
	sym=${line%%=*} val=${line#*=}
	if [ "$val" = n ]; then
		grep -q "^$sym=" "$obj/.config" || continue
	else
		grep -qxF "$line" "$obj/.config" && continue
	fi
	echo "debug-kernel: $line did not take: $(grep -E "^$sym=|^# $sym is not set" "$obj/.config" ||
		echo "$sym absent")" >&2
	bad=1
done < <(grep -E '^CONFIG_[A-Z0-9_]+=' "$frag")
[ "$bad" = 0 ] || exit 1

echo "debug-kernel: building in $obj (nice -n 19 make -j$jobs, log in $build/build.log)"
start=$(date +%s)
if ! nice -n 19 make -C "$src" O="$obj" -j"$jobs" bzImage modules >"$build/build.log" 2>&1; then
	tail -n 40 "$build/build.log" >&2
	echo "debug-kernel: build failed, see $build/build.log" >&2
	exit 1
fi
stamp >"$obj/.kvmq-stamp"
echo "debug-kernel: built in $(($(date +%s) - start)) s: $obj/arch/x86/boot/bzImage"
