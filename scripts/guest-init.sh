#!/bin/sh
# guest-init.sh - /init of the kvmq L2 guests (busybox sh; see
# mkguest-initramfs.sh).  Mounts proc, sys and dev, loads kvmq_guest.ko,
# runs the command of the kernel command line with sh -c, then powers off.
# Kernel command line parameters:
#   kvmqg.run=CMD      the command; quote it if it has spaces:
#                      kvmqg.run="kvmq recv -o /tmp/out" (no " inside).
#                      Without it: kvmq stat, then a shell on the console.
#   kvmqg.args=ARGS    insmod parameters of kvmq_guest (none so far)
#   kvmqg.noload       do not load the driver (the command may insmod
#                      /lib/modules/kvmq_guest.ko itself)
# On the console: "KVMQG-EXIT: <status>" (the command's exit status, or 255
# for a set-up failure), then the guest powers off.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/root HOME=/root

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
exec </dev/console >/dev/console 2>&1

cmdline=$(cat /proc/cmdline)
param() {
	# kvmqg.NAME="VALUE WITH SPACES" or kvmqg.NAME=VALUE
	case " $cmdline " in
	*" kvmqg.$1=\""*)
		v=${cmdline#*kvmqg."$1"=\"}
		echo "${v%%\"*}"
		;;
	*" kvmqg.$1="*)
		v=${cmdline#*kvmqg."$1"=}
		echo "${v%% *}"
		;;
	esac
}
run=$(param run)
args=$(param args)

finish() {
	echo "KVMQG-EXIT: $1"
	sync
	poweroff -f
}

case " $cmdline " in
*" kvmqg.noload "*) ;;
*)
	# shellcheck disable=SC2086 # several parameters
	insmod /lib/modules/kvmq_guest.ko $args || {
		echo "kvmqg-init: insmod kvmq_guest failed"
		finish 255
	}
	;;
esac

if [ -n "$run" ]; then
	sh -c "$run"
	finish $?
fi
kvmq stat
echo "kvmqg-init: no kvmqg.run= on the kernel command line; exit the shell to power off"
setsid cttyhack sh
finish $?
