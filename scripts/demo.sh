#!/bin/bash
# demo.sh - `make demo`: boot the test host and run the kvmq pipeline demo
# in it: VMs "read", "decode" and "play", each in its own VMM process, pass
# a file along as messages; pages move from VM to VM without copies.
# Usage: scripts/demo.sh [PROGRAM]   (after `make modules selftests`; make
# demo does both).  PROGRAM is kvmq_demo (default) or kvmq_bench (`make
# bench`), from tools/testing/selftests/kvmq/.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
top=$(dirname "$here")
# shellcheck source-path=SCRIPTDIR source=kvmq-env.sh
. "$here/kvmq-env.sh"
"$here/deps.sh"

prog=${1:-kvmq_demo}
out=$KVMQ_CACHE/demo
args=()
# The benchmark writes its JSON into the result dir, shared with the host.
[ "$prog" = kvmq_bench ] && args=("$out/bench.json")
echo "demo: booting the KVM test host (QEMU/TCG, about 10 s)"
KVMQ_APPEND="quiet ${KVMQ_APPEND:-}" exec "$here/testvm.sh" --npt 1 \
	--out "$out" -- "$here/guest-demo.sh" \
	"$top/kvmq/kvmq.ko" "$top/tools/testing/selftests/kvmq/$prog" \
	"${args[@]}"
