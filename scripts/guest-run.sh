#!/bin/bash
# guest-run.sh - kvmq test runner inside the test host VM (see testvm.sh).
# Usage: guest-run.sh KO_PATH TESTDIR [TEST...]
# Loads KO_PATH, runs TEST... (default: every executable TESTDIR/*_test and
# *_test.py) from
# TESTDIR with a per-test timeout, echoes their TAP and counts top-level TAP
# results: "ok" = pass, "ok ... # SKIP" = skip, "not ok" (also # TODO) or
# "Bail out!" = fail.  A test also fails once if it exits non-zero (4 =
# KSFT_SKIP = skipped) without a "not ok" line, crashes, times out, reports
# fewer results than its plan, reports nothing, or leaves BUG/WARNING/Oops/
# KFENCE/ODEBUG/lockdep/... lines in the kernel log.  Finally rmmods the
# module and prints
#   kvmq-lane: N passed, N failed, N skipped
# On a debug kernel (scripts/debug-kernel.sh) also fails when lockdep is off
# before the first test or after the last, or when kmemleak, scanning after
# the rmmod, finds a leak that the scan before the insmod had not found.
# After each top-level result it prints "# N s" (seconds since the one
# before), which shows the tests that near their harness timeout.
# Exit status 0 iff nothing failed.
# Environment: KVMQ_KO=KO_PATH is exported to the tests;
#   KVMQ_TEST_TIMEOUT  seconds per test (default 1200)
#   KVMQ_NO_MODULE=1   do not insmod/rmmod (e.g. tests against stock KVM, or
#                      trying the runner before kvmq.ko exists)
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
[ $# -ge 2 ] || { echo "usage: guest-run.sh KO_PATH TESTDIR [TEST...]" >&2; exit 2; }
ko=$1 dir=$2
shift 2
export KVMQ_KO=$ko
mod=$(basename "$ko" .ko)
mod=${mod//-/_}
tmo=${KVMQ_TEST_TIMEOUT:-1200}
pass=0 fail=0 skip=0
bad='BUG:|WARNING:|Oops|KFENCE:|general protection fault|Call Trace'
bad+='|ODEBUG|INFO: |lock debugging|lockdep is turned off|suspected memory leak'
bad+='|unreferenced object|leak detector disabled|kmemleak: Cannot|Memory pool empty'
kmemleak=/sys/kernel/debug/kmemleak

lane() {
	echo "kvmq-lane: $pass passed, $fail failed, $skip skipped"
	[ "$fail" = 0 ] && exit 0
	exit 1
}
failed() { echo "guest-run: FAIL: $*"; fail=$((fail + 1)); }
# Copies its input, with "# N s" after each top-level TAP result: the
# seconds since the previous result (or the start).
stamp() {
	local l t=$SECONDS
	while IFS= read -r l || [ -n "$l" ]; do
		printf '%s\n' "$l"
		case $l in
		"ok "[0-9]* | "not ok "[0-9]*)
			echo "# $((SECONDS - t)) s"
			t=$SECONDS
			;;
		esac
	done
}

# The kernel log after the marker $1 (written to /dev/kmsg): fails, saying
# $2, if it has lines that look bad.  A soft lockup report of an idle CPU
# halted in the idle loop is the emulator not running that vCPU: it becomes
# a note (klog-idle.awk, Documentation/testing.rst).
mark() { echo "<6>kvmq-guest-run: $1" >/dev/kmsg; }  # KERN_INFO: not on console
check_log() {
	local l hits
	l=$(dmesg | sed -n "/kvmq-guest-run: $1\$/,\$p" | awk -f "$here/klog-idle.awk")
	grep 'kvmq-klog:' <<<"$l" | sed 's/^/guest-run: note: /' || true
	hits=$(grep -E "$bad" <<<"$l" || true)
	[ -z "$hits" ] || { failed "$2:"; echo "$hits"; }
}
# Lockdep (debug kernels) stops at its first report, or on a taint.
lockdep_on() {
	[ -e /proc/lockdep_stats ] || return 0
	grep -Eq '^ *debug_locks: +1$' /proc/lockdep_stats ||
		failed "lockdep is off ($1): $(grep debug_locks /proc/lockdep_stats)"
}
# kmemleak (debug kernels): suspects are only reported for objects older than
# 5 s, so wait that long first.  "clear" forgets the current suspects.
leak_scan() {
	sleep 6
	echo scan >"$kmemleak"
}

if [ -w "$kmemleak" ]; then
	leak_scan
	echo clear >"$kmemleak"
fi
lockdep_on "before the tests"
echo "guest-run: soft lockups reported after 2 x" \
	"$(cat /proc/sys/kernel/watchdog_thresh 2>/dev/null || echo '?') s," \
	"RCU stalls after" \
	"$(cat /sys/module/rcupdate/parameters/rcu_cpu_stall_timeout 2>/dev/null || echo '?') s"

if [ "${KVMQ_NO_MODULE:-0}" != 1 ]; then
	if [ ! -f "$ko" ]; then
		failed "module $ko does not exist (build it, or set KVMQ_NO_MODULE=1)"
		lane
	fi
	mark "insmod $mod"
	if ! insmod "$ko"; then
		failed "insmod $ko failed"
		lane
	fi
	check_log "insmod $mod" "kernel log after insmod"
fi

if [ $# = 0 ]; then
	for f in "$dir"/*_test "$dir"/*_test.py; do [ -x "$f" ] && set -- "$@" "${f##*/}"; done
	[ $# = 0 ] && failed "no *_test executables in $dir"
fi

cd "$dir"
out=$(mktemp)
for t in "$@"; do
	echo "guest-run: === $t"
	if [ ! -x "$t" ]; then failed "$t: no such executable in $dir"; continue; fi
	mark "start $t"
	start=$(date +%s)
	set +e
	timeout -k 10 "$tmo" "./$t" </dev/null 2>&1 | stamp | tee "$out"
	rc=${PIPESTATUS[0]}
	set -e
	# p f s: results; plan: 1..N (-1 if none); plan0skip: "1..0 # SKIP".
	read -r p f s plan plan0skip < <(awk '
		BEGIN { p = f = s = 0; plan = -1; z = 0 }
		/^ok [0-9]+/ { if (toupper($0) ~ /# *SKIP/) s++; else p++; next }
		/^not ok [0-9]+/ || /^Bail out!/ { f++; next }
		/^1\.\.[0-9]+/ { split($1, a, "\\.\\."); plan = a[2]
			if (plan == 0 && toupper($0) ~ /# *SKIP/) z = 1 }
		END { print p, f, s, plan, z }' "$out")
	pass=$((pass + p)) skip=$((skip + s))
	[ "$f" -gt 0 ] && failed "$t: $f TAP failure(s)"
	fail=$((fail + (f > 0 ? f - 1 : 0)))
	n=$((p + f + s))
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		failed "$t: timed out after $tmo s"
	elif [ "$rc" = 4 ] && [ "$f" = 0 ]; then
		[ "$n" = 0 ] && skip=$((skip + 1))
	elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		failed "$t: exit status $rc without a 'not ok' line"
	elif [ "$n" = 0 ] && [ "$plan0skip" = 0 ]; then
		failed "$t: printed no TAP result"
	elif [ "$plan" -gt "$n" ]; then
		failed "$t: planned $plan results, got $n"
	fi
	[ "$plan0skip" = 1 ] && [ "$n" = 0 ] && [ "$rc" != 4 ] && skip=$((skip + 1))
	check_log "start $t" "$t: kernel log"
	echo "guest-run: $t: exit $rc, $(($(date +%s) - start)) s"
done
rm -f "$out"

if [ "${KVMQ_NO_MODULE:-0}" != 1 ]; then
	mark "rmmod $mod"
	rmmod "$mod" || failed "rmmod $mod failed"
	check_log "rmmod $mod" "kernel log after rmmod"
fi
lockdep_on "after the tests"
if [ -w "$kmemleak" ]; then
	start=$(date +%s)
	leak_scan
	leaks=$(cat "$kmemleak")
	echo "guest-run: kmemleak scan: $(($(date +%s) - start)) s"
	[ -z "$leaks" ] || { failed "kmemleak found leaks:"; echo "$leaks"; }
fi
lane
