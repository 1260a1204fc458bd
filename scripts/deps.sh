#!/usr/bin/env bash
# Installs what brig builds and tests with, from Debian's packages, if it
# is missing. Run as root on Debian 12.
set -euo pipefail
need=()
command -v busybox >/dev/null 2>&1 || need+=(busybox-static)
[ -f /usr/include/seccomp.h ] || need+=(libseccomp-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
# C headers and libc.a (brig is linked statically); gcc only recommends it.
dpkg -s libc6-dev >/dev/null 2>&1 || need+=(libc6-dev)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v crun >/dev/null 2>&1 || need+=(crun)
command -v ps >/dev/null 2>&1 || need+=(procps)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v containerd >/dev/null 2>&1 || need+=(containerd)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
command -v slirp4netns >/dev/null 2>&1 || need+=(slirp4netns)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# For make bench: learnbench compares brig learn with strace -f, and walks
# a tree with Debian's python3.
command -v strace >/dev/null 2>&1 || need+=(strace)
[ -x /usr/bin/python3 ] || need+=(python3)
# For make bench: brig run -- true is paired with bubblewrap's.
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null 2>&1; then
	echo "Go is needed (expected at /usr/local/go)" >&2; exit 1
fi
# staticcheck for `make lint`, from the Go module proxy.
gobin="$(go env GOPATH 2>/dev/null || echo /root/go)/bin"
if [ ! -x "$gobin/staticcheck" ] && command -v go >/dev/null 2>&1; then
	echo "installing staticcheck"
	GOFLAGS= go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
# crictl, the CRI client the Kubernetes tests drive containerd with.
if [ ! -x "$gobin/crictl" ] && command -v go >/dev/null 2>&1; then
	echo "installing crictl"
	GOFLAGS= go install sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0
fi
