#!/bin/bash
# testvm.sh - boot the kvmq test host (QEMU/TCG, AMD SVM+NPT, Debian $KVER)
# and run one command in it.
# Usage: scripts/testvm.sh [--npt 0|1] [--out DIR] [--timeout SEC] -- /abs/cmd [args...]
#   --npt      kvm_amd npt= in the VM (default 1; 0 = shadow paging)
#   --out      result dir (default: a new /tmp/kvmq-vm.*), writable in the VM at
#              the same path and in $KVMQ_OUT; gets console.log, dmesg.txt,
#              tainted, npt.  No spaces allowed (it goes on the kernel cmdline).
#   --timeout  seconds before the VM is killed (default 1800)
# The VM sees the build machine's root (read-only, overlaid with a RAM tmpfs),
# so paths and binaries are the same; the command runs as root in the
# caller's cwd.  Exit status: the command's, or 1 if the VM timed out,
# panicked, logged a BUG/WARNING/Oops/KFENCE/ODEBUG/lockdep/kmemleak/...
# report, or got a taint other than O/E.  The caller's KVMQ_* variables are
# passed to the command; in the VM KVMQ_OUT is the result dir and KVMQ_NPT
# the lane.
# Environment: KVMQ_CPU (QEMU -cpu), KVMQ_MEM (-m, default 4G), KVMQ_APPEND
# (extra kernel parameters), KVMQ_DMESG_ALLOW (regex of dmesg lines to ignore),
# KVMQ_KERNEL (boot this kernel image instead of Debian's $KVER: one with 9p,
# overlay and KVM built in, as scripts/debug-kernel.sh builds; its initramfs
# has no modules, and kvm_amd.npt= and pci=noacpi go on its command line).
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source-path=SCRIPTDIR source=kvmq-env.sh
. "$here/kvmq-env.sh"

npt=1 out='' tmo=1800
while [ $# -gt 0 ]; do
	case "$1" in
	--npt) npt=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--timeout) tmo=$2; shift 2 ;;
	--) shift; break ;;
	*) echo "testvm: unknown option $1" >&2; exit 2 ;;
	esac
done
if [ $# = 0 ] || [ "${1:0:1}" != / ]; then
	echo "testvm: usage: testvm.sh [opts] -- /abs/cmd [args]" >&2
	exit 2
fi
case "$npt" in 0 | 1) ;; *) echo "testvm: --npt 0|1" >&2; exit 2 ;; esac
if [ -z "$out" ]; then out=$(mktemp -d /tmp/kvmq-vm.XXXXXX); else mkdir -p "$out"; fi
out=$(readlink -f "$out")
case "$out" in *[[:space:]]*) echo "testvm: --out must not contain spaces" >&2; exit 2 ;; esac
rm -f "$out"/{console.log,dmesg.txt,tainted,npt}

# Rebuild the initramfs when its sources changed.
kernel=$IMGDIR/boot/vmlinuz-$KVER initrd=$KVMQ_CACHE/initramfs-$KVER.cpio.gz mkopt=()
if [ -n "${KVMQ_KERNEL:-}" ]; then
	[ -e "$KVMQ_KERNEL" ] || { echo "testvm: KVMQ_KERNEL=$KVMQ_KERNEL does not exist" >&2; exit 2; }
	kernel=$KVMQ_KERNEL initrd=$KVMQ_CACHE/initramfs-builtin.cpio.gz mkopt=(--no-modules)
fi
if [ ! -e "$initrd" ] || [ "$here/mkinitramfs.sh" -nt "$initrd" ] || [ "$here/vm-init.sh" -nt "$initrd" ]; then
	"$here/mkinitramfs.sh" "${mkopt[@]}" "$initrd"
fi

# The command line only carries a path; cwd, arguments and the caller's
# KVMQ_* variables go in a wrapper (the VM starts the command with env -i).
{
	echo '#!/bin/bash'
	for v in $(compgen -e); do
		case "$v" in KVMQ_OUT | KVMQ_NPT) ;; KVMQ_*) printf 'export %s=%q\n' "$v" "${!v}" ;; esac
	done
	printf 'cd %q 2>/dev/null || cd /\nexec' "$PWD"
	printf ' %q' "$@"
	echo
} >"$out/run.sh"
chmod +x "$out/run.sh"

# TCG, one thread: MTTCG raced kernel text patching in the guest (DESIGN.md).
# EPYC-Rome gives an AMD CPU model with SVM and NPT for kvm_amd; QEMU warns
# about the model's features TCG lacks (and drops them): filtered below.
# No NIC (-nodefaults): nothing needs a network.
cpu=${KVMQ_CPU:-EPYC-Rome,+svm,+npt}
append="console=ttyS0 loglevel=5 log_buf_len=4M panic_on_warn=1 panic=-1 oops=panic"
append+=" kvmq.npt=$npt kvmq.run=$out/run.sh kvmq.out=$out"
# Stall detectors scaled to TCG, which runs the test host tens of times
# slower than hardware and has held one of its vCPUs, in a nested guest,
# for 24 s: soft lockups after 110 s (twice watchdog_thresh), RCU stalls
# after 100 s, as syzbot's VMs have them (Documentation/testing.rst).
append+=" watchdog_thresh=55 rcupdate.rcu_cpu_stall_timeout=100"
# A debug kernel runs the AML loop of the machine's _PRT so slowly that ACPI
# aborts it after 30 s, once per virtio device: PCI routing without ACPI.
if [ -n "${KVMQ_KERNEL:-}" ]; then append+=" kvm_amd.npt=$npt pci=noacpi"; fi
append+=" ${KVMQ_APPEND:-}"
start=$(date +%s)
# A stall of this machine (nothing here runs) is, in the test host, a clock
# jump of its vCPUs: any gap of 20 s or more between two samples is noted.
(
	prev=$start
	while sleep 2; do
		now=$(date +%s)
		[ $((now - prev)) -lt 20 ] || echo "$(date -d "@$prev" +%T) $((now - prev))"
		prev=$now
	done
) >"$out/stalls" 2>/dev/null &
sampler=$!
trap 'kill "$sampler" 2>/dev/null || true' EXIT
set +e
# --foreground: QEMU stays in our process group, so Ctrl-C reaches it.
# The outer QEMU: scripts/qemu.sh's build (KVMQ_QEMU), whose TCG delivers an
# interrupt injected by VMRUN once (qemu/0001-*.patch): nested Linux guests
# of a 2-vCPU test host hang in half their boots without it.  It has only
# q35 and the devices listed in its configs/devices/x86_64-softmmu/kvmq.mak.
qemu=${KVMQ_QEMU:-$("$here/qemu.sh" --print)}
timeout --foreground -k 10 "$tmo" "$qemu" -L /usr/share/seabios -L /usr/share/qemu \
	-machine q35 -nodefaults -display none -serial mon:stdio \
	-accel tcg,thread=single -cpu "$cpu" \
	-m "${KVMQ_MEM:-4G}" -smp 2 -no-reboot \
	-kernel "$kernel" -initrd "$initrd" -append "$append" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap \
	-virtfs "local,path=$out,mount_tag=out,security_model=passthrough" \
	</dev/null 2>&1 | grep --line-buffered -v "TCG doesn't support requested feature" |
	tee "$out/console.log"
qrc=${PIPESTATUS[0]}
set -e
kill "$sampler" 2>/dev/null || true
echo "testvm: VM ran $(($(date +%s) - start)) s (npt=$npt, out=$out)"

# Verdict.
fail() { echo "testvm: FAIL: $*"; bad=1; }
bad=0
rc=$(tr -d '\r' <"$out/console.log" | sed -n 's/^KVMQ-EXIT: \([0-9]*\)$/\1/p' | tail -n1)
[ "$qrc" = 124 ] && fail "timed out after $tmo s"
if [ -z "$rc" ]; then
	fail "VM ended without a KVMQ-EXIT line (qemu status $qrc)"
	rc=1
fi
npt_now=$(cat "$out/npt" 2>/dev/null ||
	tr -d '\r' <"$out/console.log" | sed -n 's/^kvmq-init: .*kvm_amd npt=//p' | tail -n1)
echo "testvm: kvm_amd npt in effect: ${npt_now:-unknown}"

# Debug kernels add reports of their own, most with a BUG:/WARNING: line or a
# Call Trace, but not all: ODEBUG, "INFO: " (lockdep, hung tasks, RCU
# stalls), lockdep or kmemleak switching themselves off, kmemleak's leaks.
pat='BUG:|WARNING:|Oops|KFENCE:|general protection fault|Kernel panic|Call Trace'
pat+='|ODEBUG|INFO: |lock debugging|lockdep is turned off|suspected memory leak'
pat+='|unreferenced object|leak detector disabled|kmemleak: Cannot|Memory pool empty'
# Known boot noise: the cmdline echo, and SRSO's note that TCG's Zen 2 model
# has no IBPB-extending microcode.
allow='Command line:|Speculative Return Stack Overflow: WARNING: See'
allow+=${KVMQ_DMESG_ALLOW:+|$KVMQ_DMESG_ALLOW}
log=$out/dmesg.txt
[ -s "$log" ] || log=$out/console.log
# A soft lockup report of an idle CPU halted in the idle loop is the test
# host's vCPU not being run: klog-idle.awk makes it a note, and its taint
# (L) is then expected, unless another soft lockup was reported.
klog=$(tr -d '\r' <"$log" | awk -f "$here/klog-idle.awk")
while read -r at gap; do
	echo "testvm: note: a sampler on this machine did not run for $gap s from $at"
done <"$out/stalls"
grep 'kvmq-klog:' <<<"$klog" | sed 's/^/testvm: note: /' || true
if hits=$(grep -E "$pat" <<<"$klog" | grep -Ev "$allow"); then
	fail "kernel log ($log) has:"
	echo "$hits" | head -n 40
fi

# Taint: O (4096, out-of-tree) and E (8192, unsigned) are expected.
taint_ok=$((4096 | 8192))
if grep -q 'kvmq-klog:' <<<"$klog" && ! grep -q 'BUG: soft lockup' <<<"$klog"; then
	taint_ok=$((taint_ok | 16384))
fi
if [ -s "$out/tainted" ]; then
	t=$(cat "$out/tainted")
	if [ $((t & ~taint_ok)) != 0 ]; then
		letters=PFSRMBUDAWCIOELKXTN s=''
		for i in $(seq 0 18); do [ $((t >> i & 1)) = 1 ] && s+=${letters:i:1}; done
		fail "kernel tainted $t ($s)"
	fi
elif [ -s "$out/dmesg.txt" ]; then
	fail "no taint value in $out/tainted"
fi

if [ "$bad" = 1 ]; then
	[ "$rc" = 0 ] && rc=1
fi
echo "testvm: exit status $rc"
exit "$rc"
