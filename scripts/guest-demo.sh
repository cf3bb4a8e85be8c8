#!/bin/sh
# guest-demo.sh - inside the test host: load kvmq, run the demo VMM, unload.
# Usage: guest-demo.sh KO_PATH DEMO_PATH
set -eu
insmod "$1"
echo "demo: kvmq loaded: $(ls -l /dev/kvmq)"
rc=0
"$2" || rc=$?
rmmod kvmq
echo "demo: kvmq unloaded"
exit "$rc"
