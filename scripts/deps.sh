#!/usr/bin/env bash
# Installs what brig builds and tests with, from Debian's packages, if it
# is missing. Run as root on Debian 12.
set -euo pipefail
need=()
command -v busybox >/dev/null 2>&1 || need+=(busybox-static)
[ -f /usr/include/seccomp.h ] || need+=(libseccomp-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v crun >/dev/null 2>&1 || need+=(crun)
command -v ps >/dev/null 2>&1 || need+=(procps)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	echo "note: add /usr/local/go/bin to PATH" >&2
fi
