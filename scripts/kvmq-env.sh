# shellcheck shell=bash
# kvmq-env.sh - common settings for the kvmq test scripts.  Source it:
#   . scripts/kvmq-env.sh
# Every variable may be overridden from the environment:
#   KVMQ_CACHE  download/extraction cache  (${XDG_CACHE_HOME:-$HOME/.cache}/kvmq)
#   KVER        pinned Debian kernel release, e.g. 6.12.117+deb12-amd64
#               (default: newest linux-headers-6.12.*+deb12-amd64 in apt,
#               resolved once and cached in $KVMQ_CACHE/kver)
#   KDIR        kernel headers to build against (/usr/src/linux-headers-$KVER)
#   KSRC        extracted linux-source-6.12 tree ($KVMQ_CACHE/linux-source-6.12)
#   IMGDIR      extracted linux-image-$KVER-unsigned ($KVMQ_CACHE/$KVER)

KVMQ_CACHE=${KVMQ_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kvmq}

# Print the newest linux-headers-6.12.*+deb12-amd64 release apt knows about.
kvmq_resolve_kver() {
	local v
	# The meta package depends on exactly the current ABI's headers package.
	v=$(apt-cache depends linux-headers-6.12-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-headers-\(6\.12\.[0-9]*+deb12-amd64\)$/\1/p' |
		sort -V | tail -n1)
	if [ -z "$v" ]; then
		v=$(apt-cache search --names-only '^linux-headers-6\.12\.[0-9]+\+deb12-amd64$' |
			sed -n 's/^linux-headers-\(6\.12\.[0-9]*+deb12-amd64\) .*/\1/p' |
			sort -V | tail -n1)
	fi
	[ -n "$v" ] || { echo "kvmq-env: cannot resolve KVER (apt-get update?)" >&2; return 1; }
	echo "$v"
}

if [ -z "${KVER:-}" ]; then
	if [ -s "$KVMQ_CACHE/kver" ]; then
		KVER=$(cat "$KVMQ_CACHE/kver")
	else
		KVER=$(kvmq_resolve_kver) || return 1 2>/dev/null || exit 1
		mkdir -p "$KVMQ_CACHE" && echo "$KVER" >"$KVMQ_CACHE/kver"
	fi
fi

KDIR=${KDIR:-/usr/src/linux-headers-$KVER}
KSRC=${KSRC:-$KVMQ_CACHE/linux-source-6.12}
IMGDIR=${IMGDIR:-$KVMQ_CACHE/$KVER}
export KVMQ_CACHE KVER KDIR KSRC IMGDIR
