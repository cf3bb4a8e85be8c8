#!/bin/bash
# qemu.sh - build the QEMU that carries kvmq's patches (qemu/*.patch) from
# Debian's own qemu source package, with only what the test host needs: the
# x86_64 system target, KVM and TCG, q35, virtio, 9p, and the kvmq-pci device.
#
# Usage: scripts/qemu.sh [--print]
#   --print   only print the path of the binary (build it first if needed)
#
# The source is fetched with a private apt configuration (the system's apt
# setup is left alone), unpacked with Debian's patches, made a git tree, and
# kvmq's series is applied with `git am`.  Everything lives in
# $KVMQ_CACHE/qemu: src-<version>/ (pristine, with Debian's patches),
# tree/ (the patched tree, rebuilt when the series changes) and build/.
# The binary is $KVMQ_CACHE/qemu/build/qemu-system-x86_64; run it with
# `-L /usr/share/seabios -L /usr/share/qemu -nodefaults` (scripts/kvmq-env.sh
# sets KVMQ_QEMU and KVMQ_QEMU_ARGS).
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
top=$(dirname "$here")
# shellcheck source-path=SCRIPTDIR source=kvmq-env.sh
. "$here/kvmq-env.sh"

print=0
[ "${1:-}" = --print ] && print=1
# On standard error: with --print, standard output is the path alone.
log() { echo "qemu: $*" >&2; }

dir=$KVMQ_CACHE/qemu
mkdir -p "$dir"

pkgs=(dpkg-dev gcc libc6-dev make pkgconf python3 ninja-build meson git
	libglib2.0-dev libpixman-1-dev zlib1g-dev libfdt-dev libcap-ng-dev
	libattr1-dev seabios qemu-system-data)
have=$(dpkg-query -W -f '${db:Status-Status}\n' "${pkgs[@]}" 2>/dev/null |
	grep -c '^installed$' || true)
if [ "$have" != "${#pkgs[@]}" ]; then
	log "installing build dependencies"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${pkgs[@]}" >/dev/null
fi

# The source package of the QEMU Debian ships, through a private apt
# configuration whose sources repeat the system's Debian entries as deb-src.
ver=$(dpkg-query -W -f '${Version}' qemu-system-data)
ver=${ver#*:}
ver=${ver%+b[0-9]*}
src=$dir/src-$ver
if [ ! -e "$src/.kvmq-extracted" ]; then
	apt=$dir/apt
	rm -rf "$apt"
	mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/sources.list.d"
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -e "$f" ] || continue
		grep -q 'debian' "$f" || continue
		sed 's/^Types:.*/Types: deb-src/' "$f" >"$apt/sources.list.d/$(basename "$f")"
	done
	if [ -s /etc/apt/sources.list ]; then
		sed -n 's/^deb \(.*debian.*\)/deb-src \1/p' /etc/apt/sources.list >"$apt/sources.list"
	else
		: >"$apt/sources.list"
	fi
	cat >"$apt/apt.conf" <<-EOF
		Dir::Etc::sourcelist "$apt/sources.list";
		Dir::Etc::sourceparts "$apt/sources.list.d";
		Dir::State::Lists "$apt/lists";
		Dir::Cache "$apt/cache";
	EOF
	log "fetching the qemu $ver source package"
	APT_CONFIG=$apt/apt.conf apt-get update -qq 2>&1 | grep -v 'unsandboxed as root' || true
	rm -rf "$dir/dl" && mkdir -p "$dir/dl"
	# apt downloads as root when _apt cannot write the private directory.
	(cd "$dir/dl" && APT_CONFIG=$apt/apt.conf apt-get source -qq --download-only \
		"qemu=1:$ver" 2>&1 | grep -v 'unsandboxed as root' || true)
	dsc=$(ls "$dir"/dl/qemu_*.dsc)
	rm -rf "$src" "$src.tmp"
	log "unpacking $(basename "$dsc") with Debian's patches"
	# gpgv cannot check the signature without Debian's developer keys; the
	# archive's signed Release file vouched for the .dsc already.
	dpkg-source -q -x "$dsc" "$src.tmp" >/dev/null 2>&1 ||
		{ echo "qemu: dpkg-source -x $dsc failed" >&2; exit 1; }
	touch "$src.tmp/.kvmq-extracted"
	mv "$src.tmp" "$src"
	rm -rf "$dir/dl" "$apt" "$dir"/qemu_*.orig.tar.*
fi

# The patched tree: rebuilt from $src when the series changes.
series=$(cat "$top"/qemu/*.patch | sha256sum | cut -c1-16)
tree=$dir/tree
if [ "$(cat "$tree/.kvmq-series" 2>/dev/null)" != "$ver-$series" ]; then
	log "applying qemu/*.patch to a copy of qemu $ver"
	rm -rf "$tree"
	cp -a "$src" "$tree"
	rm -f "$tree/.kvmq-extracted"
	git -C "$tree" init -q
	git -C "$tree" add -A -f .
	git -C "$tree" -c user.name=kvmq -c user.email=kvmq@localhost \
		commit -q -m "qemu $ver as Debian ships it"
	git -C "$tree" -c user.name=kvmq -c user.email=kvmq@localhost \
		am -q "$top"/qemu/*.patch
	echo "$ver-$series" >"$tree/.kvmq-series"
fi

# The series carries a copy of kvmq's UAPI header: it must be this one.
if ! cmp -s "$top/include/uapi/linux/kvmq.h" "$tree/linux-headers/linux/kvmq.h"; then
	echo "qemu: qemu/0002-*.patch has another include/uapi/linux/kvmq.h;" \
		"update the patch" >&2
	exit 1
fi

# Configure once; ninja rebuilds what the series changed (cp -a kept the
# other files' times) and reruns meson when a meson.build changed.
build=$dir/build
if [ ! -e "$build/build.ninja" ]; then
	log "configuring"
	mkdir -p "$build"
	(cd "$build" && "$tree/configure" --target-list=x86_64-softmmu \
		--without-default-features --without-default-devices \
		--with-devices-x86_64=kvmq --enable-kvm --enable-tcg \
		--enable-virtfs --enable-attr --enable-cap-ng --enable-fdt=system \
		--disable-docs --disable-tools --disable-guest-agent --disable-user \
		--disable-install-blobs --disable-werror >configure.log 2>&1) ||
		{ cat "$build/configure.log" >&2; exit 1; }
fi
start=$(date +%s)
if ! make -C "$build" -j"$(nproc)" qemu-system-x86_64 >"$build/make.log" 2>&1; then
	tail -n 60 "$build/make.log" >&2
	exit 1
fi
log "qemu-system-x86_64 up to date ($(($(date +%s) - start)) s to check or build)"
[ "$print" = 1 ] && echo "$build/qemu-system-x86_64"
exit 0
