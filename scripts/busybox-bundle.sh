#!/usr/bin/env bash
# Makes an OCI bundle in DIR with a busybox root filesystem and brig's
# default config.json, changed to run ARGS without a terminal.
# Usage: scripts/busybox-bundle.sh DIR BRIG [ARGS...]
set -euo pipefail
dir=$1 brig=$2
shift 2
rm -rf "$dir"
mkdir -p "$dir/rootfs"/{bin,proc,sys,dev,etc,tmp,root}
cp "$(command -v busybox)" "$dir/rootfs/bin/busybox"
for a in $("$dir/rootfs/bin/busybox" --list); do
	[ "$a" = busybox ] || ln -s busybox "$dir/rootfs/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/rootfs/etc/passwd"
"$brig" spec --bundle "$dir"
if [ $# -gt 0 ]; then
	args=$(printf '%s\n' "$@" | python3 -c 'import json,sys; print(json.dumps([l.rstrip("\n") for l in sys.stdin]))')
	python3 - "$dir/config.json" "$args" <<'PY'
import json, sys
path, args = sys.argv[1], json.loads(sys.argv[2])
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = args
json.dump(c, open(path, "w"), indent=1)
PY
fi
