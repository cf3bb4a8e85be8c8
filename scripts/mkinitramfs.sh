#!/bin/bash
# mkinitramfs.sh - build the busybox initramfs of the kvmq test host VM.
# Usage: scripts/mkinitramfs.sh [--no-modules] OUT.cpio.gz
# Contents: busybox-static, /init (scripts/vm-init.sh) and the kernel modules
# of $IMGDIR listed below plus their dependencies, decompressed (busybox
# insmod does not read .ko.xz) and listed in load order in /modules.order.
# Extra modules: KVMQ_EXTRA_MODULES="vhost_net ..." (names or aliases with _).
# --no-modules: for a kernel with all of them built in (the debug kernel of
# scripts/debug-kernel.sh): no modules, an empty /modules.order.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source-path=SCRIPTDIR source=kvmq-env.sh
. "$here/kvmq-env.sh"

nomod=0
[ "${1:-}" = --no-modules ] && { nomod=1; shift; }
out=${1:?usage: mkinitramfs.sh [--no-modules] OUT.cpio.gz}
out=$(readlink -f "$out")
moddir=$IMGDIR/lib/modules/$KVER
[ "$nomod" = 1 ] || [ -d "$moddir" ] ||
	{ echo "mkinitramfs: $moddir missing, run scripts/deps.sh" >&2; exit 1; }

# 9p + overlay give the VM the build machine's root; kvm_amd needs ccp and
# irqbypass.  virtio_pci, virtio_console and 8250 are built in (=y).
wanted="netfs 9pnet 9pnet_virtio 9p overlay irqbypass ccp kvm kvm_amd ${KVMQ_EXTRA_MODULES:-}"
[ "$nomod" = 0 ] || wanted=''

# Map module name (dashes folded to underscores) -> .ko.xz path.
declare -A path
[ -z "$wanted" ] || while read -r f; do
	n=${f##*/}; n=${n%.ko*}; path[${n//-/_}]=$f
done < <(find "$moddir/kernel" -name '*.ko*')

# Depth-first walk over `modinfo -F depends`: dependencies before users.
declare -A seen
order=()
visit() {
	local m=${1//-/_} d
	[ -n "${seen[$m]:-}" ] && return 0
	seen[$m]=1
	[ -n "${path[$m]:-}" ] || { echo "mkinitramfs: no module $m in $moddir" >&2; exit 1; }
	for d in $(modinfo -F depends "${path[$m]}" | tr , ' '); do visit "$d"; done
	order+=("$m")
}
for m in $wanted; do visit "$m"; done

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,host,out,newroot,rw,lib/modules}
cp /bin/busybox "$root/bin/busybox"  # from busybox-static
# Applet links are made at boot by `busybox --install -s`; sh is needed first.
ln -s busybox "$root/bin/sh"
install -m 755 "$here/vm-init.sh" "$root/init"
: >"$root/modules.order"
for m in "${order[@]}"; do
	xz -dc "${path[$m]}" >"$root/lib/modules/$m.ko"
	echo "$m" >>"$root/modules.order"
done
echo "mkinitramfs: modules: ${order[*]:-none (built in)}"
# A name of its own: lanes run side by side may both rebuild it.
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$out.tmp.$$"
mv "$out.tmp.$$" "$out"
echo "mkinitramfs: wrote $out ($(du -h "$out" | cut -f1))"
