#!/bin/bash
# run-tests.sh - `make check`: run the kvmq selftests in the test host VM,
# once per lane (kvm_amd npt=1: nested paging; npt=0: shadow paging).
# Usage: scripts/run-tests.sh [TEST...]     (default: all *_test)
# Environment: KVMQ_LANES (default "1 0"), KVMQ_RESULTS (default
# $KVMQ_CACHE/results; per lane npt$N/ gets console.log, dmesg.txt, ...),
# KVMQ_VM_TIMEOUT (seconds per lane, default 3600), KVMQ_PARALLEL (1: the
# lanes side by side, the default with a core per lane), KVMQ_MODULE (default
# kvmq/kvmq.ko), KVMQ_TESTDIR (default tools/testing/selftests/kvmq); KVMQ_*
# (KVMQ_TEST_TIMEOUT, KVMQ_NO_MODULE, ...) reach guest-run.sh in the VM.
# Last line of output: "N passed, N failed, N skipped"; non-zero exit on failure.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
top=$(dirname "$here")
# shellcheck source-path=SCRIPTDIR source=kvmq-env.sh
. "$here/kvmq-env.sh"
"$here/deps.sh"

# The L2 Linux guests of kvmq_qemu_test.py: the patched QEMU (also the test
# host's, see testvm.sh) and Debian's kernel for the guests.
KVMQ_QEMU=${KVMQ_QEMU:-$("$here/qemu.sh" --print)}
KVMQ_GUEST_KERNEL=${KVMQ_GUEST_KERNEL:-$IMGDIR/boot/vmlinuz-$KVER}
KVMQ_TOP=$top
# The pipeline's WAVs and references, made here where Python is fast: 8 MiB,
# and 16 MiB for the events, which need more blocks in flight (queues and
# receive rings).
KVMQ_PIPE_DIR=$KVMQ_CACHE/pipeline-8
KVMQ_PIPE_EVENT_DIR=$KVMQ_CACHE/pipeline-16
for d in "$KVMQ_PIPE_DIR":8 "$KVMQ_PIPE_EVENT_DIR":16; do
	if [ ! -s "${d%:*}/audio.ref" ] || [ ! -s "${d%:*}/audio.blocks" ] || [ "$top/tools/kvmq/kvmq_pipeline.py" -nt "${d%:*}/audio.ref" ]; then
		"$top/tools/kvmq/kvmq_pipeline.py" prepare "${d%:*}" --mib "${d##*:}"
	fi
done
export KVMQ_QEMU KVMQ_GUEST_KERNEL KVMQ_TOP KVMQ_PIPE_DIR KVMQ_PIPE_EVENT_DIR

results=${KVMQ_RESULTS:-$KVMQ_CACHE/results}
ko=${KVMQ_MODULE:-$top/kvmq/kvmq.ko}
testdir=${KVMQ_TESTDIR:-$top/tools/testing/selftests/kvmq}
# Lanes run side by side when the machine has a core for each (a test host
# runs TCG on one thread; KVMQ_PARALLEL=0 runs them one after the other):
# each lane's output goes to npt$N.log beside its results and is printed when
# all have ended.
read -r -a lanes <<<"${KVMQ_LANES:-1 0}"
par=${KVMQ_PARALLEL:-$(( ${#lanes[@]} > 1 && $(nproc) >= ${#lanes[@]} ))}
mkdir -p "$results"
rm -f "$results"/npt*.rc
pids=()
lane() {
	local npt=$1 rc=0
	shift
	"$here/testvm.sh" --npt "$npt" --out "$results/npt$npt" \
		--timeout "${KVMQ_VM_TIMEOUT:-3600}" -- \
		"$here/guest-run.sh" "$ko" "$testdir" "$@" || rc=$?
	echo "$rc $(date +%s)" >"$results/npt$npt.rc"
}
declare -A start
for npt in "${lanes[@]}"; do
	start[$npt]=$(date +%s)
	if [ "$par" = 1 ]; then
		echo "run-tests: lane npt=$npt started (output in $results/npt$npt.log)"
		lane "$npt" "$@" >"$results/npt$npt.log" 2>&1 &
		pids+=($!)
	fi
done
[ "$par" = 1 ] && wait "${pids[@]}"
pass=0 fail=0 skip=0
for npt in "${lanes[@]}"; do
	out=$results/npt$npt
	echo "run-tests: lane npt=$npt (results in $out)"
	if [ "$par" = 1 ]; then
		cat "$results/npt$npt.log"
	else
		start[$npt]=$(date +%s)
		lane "$npt" "$@"
	fi
	rc=1 end=$(date +%s)
	read -r rc end <"$results/npt$npt.rc" || true
	p='' f='' s=''
	read -r p f s < <(tr -d '\r' <"$out/console.log" 2>/dev/null |
		sed -n 's/^kvmq-lane: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p' |
		tail -n1) || true
	if [ -z "${s:-}" ]; then
		echo "run-tests: lane npt=$npt printed no kvmq-lane line: 1 failure"
		p=0 f=1 s=0
	elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "run-tests: lane npt=$npt failed in the VM (see above): 1 failure"
		f=1
	fi
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	wall=$((end - start[$npt]))
	echo "run-tests: lane npt=$npt: $p passed, $f failed, $s skipped, $wall s wall"
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
