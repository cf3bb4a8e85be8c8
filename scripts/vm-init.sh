#!/bin/sh
# vm-init.sh - /init of the kvmq test host VM (busybox sh; see mkinitramfs.sh).
# Kernel command line parameters (set by testvm.sh):
#   kvmq.npt=0|1     kvm_amd npt= value (default 1)
#   kvmq.run=PATH    executable to run, a path on the build machine (no spaces)
#   kvmq.out=PATH    build machine path of the result dir shared as tag "out"
# The build machine's root (9p tag "hostroot", read-only, at /host) is
# overlaid with a tmpfs so it is writable in RAM, and PATH is chroot'ed into:
# host paths are valid unchanged inside the VM.  The out dir is bind-mounted
# at its host path, so files written there survive the VM.
# On the console: "KVMQ-EXIT: <status>" (the command's exit status, or 255
# for a set-up failure); then /out gets dmesg.txt, tainted and npt.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# devtmpfs lacks these (bash process substitution needs /dev/fd).
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
mount -t tmpfs tmpfs /tmp

npt=1 run='' outpath=''
# shellcheck disable=SC2013 # words, not lines
for w in $(cat /proc/cmdline); do
	case "$w" in
	kvmq.npt=*) npt=${w#*=} ;;
	kvmq.run=*) run=${w#*=} ;;
	kvmq.out=*) outpath=${w#*=} ;;
	esac
done

finish() {
	dmesg >/out/dmesg.txt 2>&1
	cat /proc/sys/kernel/tainted >/out/tainted
	cat /sys/module/kvm_amd/parameters/npt >/out/npt 2>/dev/null
	echo "KVMQ-EXIT: $1"
	sync
	poweroff -f
}
die() {
	echo "kvmq-init: $*"
	finish 255
}

# Modules in dependency order (see /modules.order); kvm_amd gets npt=.  A
# kernel with them built in has none: kvm_amd.npt= is on its command line.
while read -r m; do
	args=
	[ "$m" = kvm_amd ] && args="npt=$npt"
	# shellcheck disable=SC2086
	insmod "/lib/modules/$m.ko" $args || die "insmod $m failed"
done </modules.order

opts=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$opts,ro,cache=loose" hostroot /host || die "cannot mount hostroot"
mount -t 9p -o "$opts" out /out || die "cannot mount out"

[ -c /dev/kvm ] || die "/dev/kvm missing"
have=$(cat /sys/module/kvm_amd/parameters/npt)
case "$npt$have" in 1Y | 0N) ;; *) die "kvm_amd npt=$have, wanted $npt" ;; esac
echo "kvmq-init: /dev/kvm ready, kvm_amd npt=$have"

# Writable view of the host root: overlay on tmpfs, else tmpfs dirs on top.
mount -t tmpfs tmpfs /rw && mkdir -p /rw/upper /rw/work
if ! mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot; then
	echo "kvmq-init: overlay failed, using read-only root with tmpfs /tmp"
	mount --bind /host /newroot
	mount -t tmpfs tmpfs /newroot/tmp
	mount -t tmpfs tmpfs /newroot/var/tmp
fi
r=/newroot
mount -t proc proc $r/proc
mount -t sysfs sysfs $r/sys
mount -t debugfs debugfs $r/sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs $r/sys/kernel/tracing 2>/dev/null
mount --bind /dev $r/dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts $r/dev/pts
mount -t tmpfs tmpfs $r/dev/shm
mount -t tmpfs tmpfs $r/run
if [ -n "$outpath" ]; then
	mkdir -p "$r$outpath" || die "cannot create $outpath"
	mount --bind /out "$r$outpath" || die "cannot bind $outpath"
fi

[ -n "$run" ] || die "no kvmq.run= on the kernel command line"
chroot $r /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	KVMQ_OUT="$outpath" KVMQ_NPT="$npt" "$run" </dev/console
finish $?
