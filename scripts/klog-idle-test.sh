#!/bin/bash
# klog-idle-test.sh - checks klog-idle.awk on a soft lockup report as the
# test host printed it (Debian 6.12 under TCG), and on variants of it that
# must be kept.  Run by `make check` before the test host boots.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
fail=0 n=0

report() {
	cat <<'LOG'
[  763.144034] kvm: kvm [3571]: vcpu0, guest rIP: 0xffffffff8aa9e458 Unhandled WRMSR(0xc0010007) = 0xffff
[  890.297459] watchdog: BUG: soft lockup - CPU#0 stuck for 111s! [swapper/0:0]
[  890.297799] Modules linked in: kvmq(OE) kvm_amd kvm ccp irqbypass overlay 9p 9pnet_virtio 9pnet netfs
[  890.299311] CPU: 0 UID: 0 PID: 0 Comm: swapper/0 Tainted: G           OE      6.12.117+deb12-amd64 #1  Debian 6.12.117-1~deb12u1
[  890.299926] RIP: 0010:pv_native_safe_halt+0xf/0x20
[  890.301281] RSP: 0018:ffffffff92803e88 EFLAGS: 00000212
[  890.301797] Call Trace:
[  890.302593]  <TASK>
[  890.302746]  default_idle+0x9/0x20
[  890.302880]  default_idle_call+0x30/0x100
[  890.302898]  do_idle+0x26b/0x2a0
[  890.303254]  cpu_startup_entry+0x29/0x30
[  890.303510]  </TASK>
[  890.306894] clocksource: Long readout interval, skipping watchdog check: cs_nsec: 118279585378 wd_nsec: 1103556736
LOG
}

# check NAME SED-EXPRESSION EXPECTED-REPORT-LINES EXPECTED-NOTES [COPIES]:
# the report's input, edited with sed, COPIES times in a row; the report
# lines (BUG, Call Trace, </TASK>, WARNING) and notes that must come out.
check() {
	local got lines notes
	got=$(for _ in $(seq "${5:-1}"); do report; done | sed "$2" |
		awk -f "$here/klog-idle.awk")
	lines=$(grep -cE 'BUG: soft lockup|Call Trace|</TASK>|WARNING:' <<<"$got" || true)
	notes=$(grep -c 'kvmq-klog: CPU#0 idle, halted, not run for 111s' <<<"$got" || true)
	n=$((n + 1))
	if [ "$lines" = "$3" ] && [ "$notes" = "$4" ] &&
		[ "$(grep -c 'Unhandled WRMSR' <<<"$got")" = "${5:-1}" ] &&
		[ "$(grep -c 'clocksource:' <<<"$got")" = "${5:-1}" ]; then
		echo "ok $n $1"
	else
		echo "not ok $n $1: $lines report lines, $notes notes"
		fail=1
	fi
}

echo "1..7"
check "an idle CPU halted: one note" '' 0 1
check "a task's lockup: kept" 's/\[swapper\/0:0\]/[kvmq_race_test:812]/' 3 0
check "an idle CPU not halted: kept" 's/RIP: 0010:pv_native_safe_halt/RIP: 0010:kvmq_ring_fill/' 3 0
check "a report cut short: kept" '/<\/TASK>/d' 2 0
check "two reports: two notes" '' 0 2 2
check "a WARNING of another CPU amid it: kept" \
	's/^\(.*\)  default_idle_call.*/&\n\1 WARNING: CPU: 1 PID: 9 at kvmq\/ring.c:1/' 1 1
check "two reports, the first cut short: one kept" '0,/<\/TASK>/{/<\/TASK>/d}' 2 1 2
exit "$fail"
