#!/bin/sh
# guest-demo.sh - inside the test host: load kvmq, run the demo VMM, unload.
# Usage: guest-demo.sh KO_PATH DEMO_PATH [ARG...]
set -eu
ko=$1 prog=$2
shift 2
insmod "$ko"
echo "demo: kvmq loaded: $(ls -l /dev/kvmq)"
rc=0
"$prog" "$@" || rc=$?
rmmod kvmq
echo "demo: kvmq unloaded"
exit "$rc"
