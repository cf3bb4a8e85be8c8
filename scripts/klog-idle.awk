# klog-idle.awk - copies a kernel log, replacing each soft lockup report of
# an idle CPU halted in the idle loop by one line:
#   kvmq-klog: CPU#N idle, halted, not run for Ns (soft lockup report dropped)
# Such a report is the test host's clock jumping while its vCPU was halted:
# the emulator (or the machine under it) did not run the vCPU, and nothing in
# the kernel was looping.  Every other report is copied as it is, and so is
# a report that is cut short or whose RIP is not a halt.  A line that another
# CPU printed in the middle of a dropped report, and that has the marks of a
# report of its own (BUG:, WARNING:, ...), is copied too.
# Used by testvm.sh and guest-run.sh before they look for bad lines; see
# Documentation/testing.rst, section 1.

function flush(idle) {
	if (idle) {
		printf "%skvmq-klog: CPU#%s idle, halted, not run for %ss" \
			" (soft lockup report dropped)\n", stamp, cpu, secs
		for (i = 2; i <= n; i++)
			if (buf[i] ~ /BUG:|WARNING:|Oops|KFENCE:|general protection fault|Kernel panic|ODEBUG|INFO: /)
				print buf[i]
	} else
		for (i = 1; i <= n; i++)
			print buf[i]
	n = 0
	open = 0
}

# The report's first line, for the idle task (swapper/N, pid 0):
# [  890.297459] watchdog: BUG: soft lockup - CPU#0 stuck for 111s! [swapper/0:0]
/watchdog: BUG: soft lockup - CPU#[0-9]+ stuck for [0-9]+s! \[swapper\/[0-9]+:0\]$/ {
	if (open)
		flush(0)
	open = 1
	halted = 0
	n = 1
	buf[1] = $0
	stamp = $0
	sub(/watchdog: BUG:.*/, "", stamp)
	cpu = $0
	sub(/.*CPU#/, "", cpu)
	sub(/ .*/, "", cpu)
	secs = $0
	sub(/.* stuck for /, "", secs)
	sub(/s!.*/, "", secs)
	next
}

open {
	buf[++n] = $0
	if ($0 ~ /RIP: 0010:(pv_native_safe_halt|native_safe_halt|acpi_safe_halt|default_idle)\+/)
		halted = 1
	if ($0 ~ /<\/TASK>$/)
		flush(halted)
	else if (n >= 100)
		flush(0)
	next
}

{ print }

END {
	if (open)
		flush(0)
}
