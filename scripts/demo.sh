#!/bin/bash
# demo.sh - `make demo`: boot the test host and run, in it, the pipeline of
# three Linux guests under QEMU's kvmq-pci device: "read" sends a WAV as
# 2 MiB blocks, "decode" scales its samples in the pages they arrived in
# and moves them on, "play" checksums what arrives
# (tools/kvmq/kvmq_pipeline.py).
# Usage: scripts/demo.sh [PROGRAM]   (after `make modules selftests guest`;
# make demo does them).  Without PROGRAM: the pipeline of Linux guests;
# "compare" (`make demo-compare`): that pipeline four ways side by side
# (kvmq_pipeline.py compare).
# PROGRAM kvmq_demo (`make demo-selftest`: the same pipeline between
# selftest guests, polled and over rings) or kvmq_bench (`make bench`),
# from tools/testing/selftests/kvmq/.
# Environment: KVMQ_PIPE_MIB (size of the WAV, default 32), KVMQ_PIPE_EVENT
# (reboot-decode, kill-play or revoke: kvmq_pipeline.py run --event),
# KVMQ_PIPE_ARGS (more arguments of kvmq_pipeline.py run or compare, e.g.
# "--trace", "--transport relay").
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
top=$(dirname "$here")
# shellcheck source-path=SCRIPTDIR source=kvmq-env.sh
. "$here/kvmq-env.sh"
"$here/deps.sh"

prog=${1:-pipeline}
out=$KVMQ_CACHE/demo
args=()
if [ "$prog" = pipeline ] || [ "$prog" = compare ]; then
	# The WAV and its reference are made here, where Python runs at full
	# speed; the test host sees this machine's files.
	pipe=$KVMQ_CACHE/pipeline-${KVMQ_PIPE_MIB:-32}
	if [ ! -s "$pipe/audio.ref" ] || [ ! -s "$pipe/audio.blocks" ] || [ "$top/tools/kvmq/kvmq_pipeline.py" -nt "$pipe/audio.ref" ]; then
		"$top/tools/kvmq/kvmq_pipeline.py" prepare "$pipe" --mib "${KVMQ_PIPE_MIB:-32}"
	fi
	KVMQ_QEMU=${KVMQ_QEMU:-$("$here/qemu.sh" --print)}
	KVMQ_GUEST_KERNEL=${KVMQ_GUEST_KERNEL:-$IMGDIR/boot/vmlinuz-$KVER}
	KVMQ_TOP=$top
	export KVMQ_QEMU KVMQ_GUEST_KERNEL KVMQ_TOP
	if [ "$prog" = compare ]; then
		args=(compare "$pipe")
	else
		args=(run "$pipe")
		if [ -n "${KVMQ_PIPE_EVENT:-}" ]; then args+=(--event "$KVMQ_PIPE_EVENT"); fi
	fi
	read -ra extra <<<"${KVMQ_PIPE_ARGS:-}"
	args+=("${extra[@]}")
	prog=$top/tools/kvmq/kvmq_pipeline.py
else
	# The benchmark writes its JSON into the result dir, shared with the host.
	[ "$prog" = kvmq_bench ] && args=("$out/bench.json")
	prog=$top/tools/testing/selftests/kvmq/$prog
fi
echo "demo: booting the KVM test host (QEMU/TCG, about 10 s)"
KVMQ_APPEND="quiet ${KVMQ_APPEND:-}" exec "$here/testvm.sh" --npt 1 \
	--out "$out" -- "$here/guest-demo.sh" \
	"$top/kvmq/kvmq.ko" "$prog" "${args[@]}"
