#!/usr/bin/env bash
# The VM lane: boots Debian's kernel under qemu (software emulation: KVM
# guests hang on this kind of host) with a small initramfs holding busybox,
# brig, the integration test binary and AppArmor's parser, runs the tests
# that only such a kernel can show, and exits with their status.
#
#   scripts/vm.sh [-m v2-apparmor] [-r REGEXP] [-c] [-k] [-- extra test flags]
#
#   -m v2-apparmor  pure cgroup v2 (cgroup_no_v1=all) with AppArmor (default)
#   -m v2-systemd   pure cgroup v2 with AppArmor and systemd as PID 1 running
#                   the tests as a unit (for the systemd cgroup driver)
#   -m v2-selinux   pure cgroup v2 with SELinux enforcing: Debian's reference
#                   policy plus tests/vm/brig_container.cil (a container
#                   domain), built here with semodule into a private copy of
#                   the policy store and loaded by the guest's /init
#   -r REGEXP       tests to run (default: all; the engines' tests skip, the
#                   cgroup v2 and AppArmor ones run only here)
#   -c              run the OCI conformance suite (tests/conformance) instead,
#                   with brig, runc and crun
#   -b              run the start-up benchmark (tools/bench) instead: crun
#                   runs on pure cgroup v2, so all three are compared (under
#                   emulation: the ratios mean more than the times)
#   -x 'COMMANDS'   run these shell commands in the guest instead (debugging)
#   -k              keep the work directory
#
# BRIG_VM_RECORDER=1 runs the tests that attach the eBPF recorder, which
# the guest skips otherwise (see needRecorder in tests/integration).
#
# BRIG_VM_LOGLEVEL=8 lets the guest kernel's every message through to the
# console (default 3: errors only), e.g. a soft lockup's stack.
#
# BRIG_VM_EXTRA="FILE ..." copies more host programs into the guest, at the
# same paths (with their libraries): another brig build to compare with the
# bench's -others, or perf.
#
# Everything comes from Debian's packages (qemu-system-x86, a kernel
# image, busybox-static, apparmor, xz-utils, cpio), installed when missing;
# the kernel is cached in $BRIG_VM_CACHE (default /var/cache/brig-vm).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
mode=v2-apparmor
run='.' 
keep=0
suite=integration
shell=""
while getopts "m:r:cbx:k" o; do
	case $o in
	m) mode=$OPTARG ;;
	r) run=$OPTARG ;;
	c) suite=conformance ;;
	b) suite=bench ;;
	x) shell=$OPTARG ;;
	k) keep=1 ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
case $mode in
v2-apparmor) cmdline="cgroup_no_v1=all apparmor=1 security=apparmor" ;;
v2-selinux) cmdline="cgroup_no_v1=all selinux=1 security=selinux enforcing=0" ;;
v2-systemd) cmdline="cgroup_no_v1=all apparmor=1 security=apparmor" ;;
*) echo "vm.sh: unknown mode $mode (want v2-apparmor, v2-selinux or v2-systemd)" >&2; exit 2 ;;
esac

need=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v apparmor_parser >/dev/null 2>&1 || need+=(apparmor)
command -v busybox >/dev/null 2>&1 || need+=(busybox-static)
command -v xz >/dev/null 2>&1 || need+=(xz-utils)
command -v cpio >/dev/null 2>&1 || need+=(cpio)
if [ "$mode" = v2-systemd ] && [ ! -x /lib/systemd/systemd ]; then need+=(systemd); fi
if [ "$mode" = v2-selinux ]; then
	[ -d /var/lib/selinux/default ] || need+=(selinux-policy-default)
	command -v semodule >/dev/null 2>&1 || need+=(policycoreutils)
fi
if [ ${#need[@]} -gt 0 ]; then
	echo "vm.sh: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH="$PATH:/usr/local/go/bin"

# The kernel: the package linux-image-amd64 points at, unpacked once.
cache="${BRIG_VM_CACHE:-/var/cache/brig-vm}"
mkdir -p "$cache"
kernel_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}'; }
pkg="$(kernel_pkg)"
[ -n "$pkg" ] || { apt-get update -qq && pkg="$(kernel_pkg)"; }
[ -n "$pkg" ] || { echo "vm.sh: no package linux-image-amd64 in the apt lists" >&2; exit 1; }
kdir="$cache/$pkg"
if [ ! -f "$kdir/vmlinux" ]; then
	echo "vm.sh: fetching $pkg"
	tmp="$(mktemp -d)"
	(cd "$tmp" && apt-get download "$pkg" >/dev/null 2>&1) || { apt-get update -qq && (cd "$tmp" && apt-get download "$pkg" >/dev/null); }
	dpkg-deb -x "$tmp"/*.deb "$tmp/x"
	mkdir -p "$kdir"
	vmlinuz="$(ls "$tmp"/x/boot/vmlinuz-*)"
	# The uncompressed ELF image boots through PVH, skipping the slow
	# decompression under emulation. The payload is xz in Debian's images.
	off="$(grep -abo "$(printf '\3757zXZ')" "$vmlinuz" | head -1 | cut -d: -f1)"
	# (xz stops at the end of its stream: no pipe, whose writer would die
	# of SIGPIPE under pipefail.)
	xz -dc --single-stream < <(tail -c +$((off + 1)) "$vmlinuz") >"$kdir/vmlinux.tmp"
	mv "$kdir/vmlinux.tmp" "$kdir/vmlinux"
	find "$tmp/x/lib/modules" -name brd.ko -exec cp {} "$kdir/" \;
	rm -rf "$tmp"
fi

# SELinux: the reference policy with brig's container module, compiled
# once per module and policy version into a private copy of the store (the
# host's own store and policy are not touched).
policy=""
if [ "$mode" = v2-selinux ]; then
	cil="$here/tests/vm/brig_container.cil"
	key="$( (dpkg-query -W -f '${Version}' selinux-policy-default; cat "$cil") | sha256sum | cut -c1-16)"
	policy="$cache/selinux-$key/policy.33"
	if [ ! -f "$policy" ]; then
		echo "vm.sh: building the SELinux policy with $(basename "$cil")"
		sp="$(mktemp -d)"
		mkdir -p "$sp/var/lib" "$sp/etc"
		cp -a /var/lib/selinux "$sp/var/lib/"
		cp -a /etc/selinux "$sp/etc/"
		semodule -p "$sp" -s default -n -X 400 -i "$cil" 2>&1 | grep -v 'not in password file' || true
		mkdir -p "$(dirname "$policy")"
		cp "$sp/etc/selinux/default/policy/policy.33" "$policy.tmp" && mv "$policy.tmp" "$policy"
		rm -rf "$sp"
	fi
fi

work="$(mktemp -d /tmp/brig-vm.XXXXXX)"
cleanup() { [ "$keep" = 1 ] && echo "vm.sh: kept $work" || rm -rf "$work"; }
trap cleanup EXIT
root="$work/root"
mkdir -p "$root"/{bin,sbin,lib,lib64,etc,proc,sys,dev,tmp,run,root,tests,var/log,usr/lib,usr/bin,opt}
chmod 1777 "$root/tmp"

echo "vm.sh: building brig and the $suite tests"
make -C "$here" --no-print-directory build BIN="$root/bin/brig"
if [ "$suite" = conformance ]; then
	(cd "$here/tests/conformance" && go run . -build-only -work "$root/conformance" &&
		CGO_ENABLED=0 go build -o "$root/tests/conformance" .)
elif [ "$suite" = bench ]; then
	# The bench reads seccomp profiles with brig's own package, which
	# links libseccomp: static, as brig is (the guest has no libseccomp).
	(cd "$here" && go build -tags netgo,osusergo -ldflags "-linkmode external -extldflags -static" -o "$root/tests/bench" ./tools/bench &&
		CGO_ENABLED=0 go build -o "$root/tests/mkbundle" ./tools/mkbundle)
else
	(cd "$here" && go test -c -o "$work/integration.test" ./tests/integration)
fi
cp "$(command -v busybox)" "$root/bin/busybox"
for a in $(busybox --list); do [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"; done
# Dynamically linked programs and the libraries they load.
copy_bin() {
	cp "$1" "$root$2"
	local lib
	for lib in $(ldd "$1" 2>/dev/null | grep -o '/[^ ]*' || true); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}
copy_bin "$root/bin/brig" /bin/brig.tmp && mv "$root/bin/brig.tmp" "$root/bin/brig"
[ "$suite" = integration ] && copy_bin "$work/integration.test" /tests/integration.test
# GNU tar: the conformance programs unpack a gzipped rootfs with `tar -xf`.
rm -f "$root/bin/tar" && copy_bin "$(command -v tar)" /bin/tar
copy_bin "$(command -v apparmor_parser)" /sbin/apparmor_parser
for x in ${BRIG_VM_EXTRA:-}; do mkdir -p "$root$(dirname "$x")"; copy_bin "$x" "$x"; done
# runc and crun, for the differential tests (crun works on pure v2).
for rt in runc crun; do
	command -v $rt >/dev/null 2>&1 && copy_bin "$(command -v $rt)" /bin/$rt
done
mkdir -p "$root/etc/apparmor.d"
cp -a /etc/apparmor.d/tunables /etc/apparmor.d/abstractions /etc/apparmor.d/abi "$root/etc/apparmor.d/"
mkdir -p "$root/usr/share"
cp -a /usr/share/apparmor-features "$root/usr/share/"
[ -d /etc/apparmor ] && cp -a /etc/apparmor "$root/etc/"
cp "$kdir/brd.ko" "$root/lib/brd.ko"
if [ -n "$policy" ]; then
	mkdir -p "$root/etc/selinux"
	cp "$policy" "$root/etc/selinux/policy.33"
fi
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf '%s\n' "$run" >"$root/tests/run"
printf '%s\n' "$*" >"$root/tests/flags"
printf '%s\n' "$suite" >"$root/tests/suite"
printf '%s\n' "${BRIG_VM_RECORDER:-}" >"$root/tests/recorder"
[ -z "$shell" ] || printf '%s\n' "$shell" >"$root/tests/shell"

cat >"$root/init" <<'EOF'
#!/bin/sh
# pivot_root can't leave the initramfs: move everything to a tmpfs first.
if [ ! -e /.switched ]; then
	mount -t proc proc /proc
	mkdir -p /newroot
	mount -t tmpfs -o size=75% tmpfs /newroot
	for d in /*; do
		case $d in /proc|/newroot) ;; *) cp -a "$d" /newroot/ ;; esac
	done
	mkdir -p /newroot/proc
	touch /newroot/.switched
	umount /proc
	exec switch_root /newroot /init
fi
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs shm /dev/shm
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
# The BPF filesystem, as systemd mounts it: brig keeps its LSM programs
# pinned there (internal/bpflsm).
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
if [ -f /etc/selinux/policy.33 ]; then
	# The policy, then enforcing: the kernel's own domain (this init, brig,
	# the tests) is permissive in it; containers' domains are not.
	mount -t selinuxfs selinuxfs /sys/fs/selinux
	# (one write: selinuxfs takes the policy whole)
	dd if=/etc/selinux/policy.33 of=/sys/fs/selinux/load bs=16M 2>/dev/null
	echo 1 > /sys/fs/selinux/enforce
	echo "selinux: enforce=$(cat /sys/fs/selinux/enforce) context=$(cat /proc/self/attr/current)"
fi
if grep -q cgroup2 /proc/filesystems; then
	mount -t cgroup2 cgroup2 /sys/fs/cgroup
	echo "+cpu +cpuset +io +memory +pids +hugetlb" > /sys/fs/cgroup/cgroup.subtree_control
fi
mount -t hugetlbfs none /dev/hugepages 2>/dev/null
ip link set lo up
insmod /lib/brd.ko rd_nr=1 rd_size=16384
export PATH=/bin:/sbin HOME=/root BRIG=/bin/brig TMPDIR=/tmp
echo "lsm: $(cat /sys/kernel/security/lsm 2>/dev/null)"
if [ -x /lib/systemd/systemd ]; then
	# systemd as PID 1 (for the systemd cgroup driver), running the tests
	# as its one unit.
	exec /lib/systemd/systemd --system --unit=brig-tests.service
fi
exec /tests/run-tests
EOF
cat >"$root/tests/run-tests" <<'EOF'
#!/bin/sh
export PATH=/bin:/sbin HOME=/root BRIG=/bin/brig TMPDIR=/tmp
cd /tests
if [ -s shell ]; then
	sh -c "$(cat shell)"
elif [ "$(cat suite)" = bench ]; then
	./bench -brig /bin/brig -mkbundle /tests/mkbundle -by-previous -n 30
elif [ "$(cat suite)" = conformance ]; then
	# A guest that breaks every program must not look like a pass: brig
	# must pass at least 25 (runtime-tools v0.9.0 has no cgroup v2 checks,
	# so its 14 cgroup programs fail with every runtime here).
	CONFORMANCE_VERBOSE=1 ./conformance -no-build -work /conformance -brig /bin/brig -min-pass 25 $(cat flags)
else
	BRIG_VM_LANE=1 BRIG_VM_RECORDER="$(cat recorder)" ./integration.test -test.v -test.count=1 -test.timeout=40m -test.run "$(cat run)" $(cat flags)
fi
echo "BRIG-VM-EXIT=$?"
sync
reboot -f # with -no-reboot, qemu exits
EOF
chmod +x "$root/init" "$root/tests/run-tests"
if [ "$mode" = v2-systemd ]; then
	mkdir -p "$root/lib/systemd" "$root/etc/systemd/system"
	cp -a /lib/systemd/system "$root/lib/systemd/"
	copy_bin /lib/systemd/systemd /lib/systemd/systemd
	copy_bin "$(command -v systemctl)" /bin/systemctl.tmp && mv "$root/bin/systemctl.tmp" "$root/bin/systemctl"
	printf '%s\n' 0123456789abcdef0123456789abcdef >"$root/etc/machine-id"
	cat >"$root/etc/systemd/system/brig-tests.service" <<'EOF'
[Unit]
Description=brig's VM tests
DefaultDependencies=no

[Service]
Type=oneshot
ExecStart=/tests/run-tests
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
EOF
fi
(cd "$root" && find . | cpio -o -H newc --quiet) >"$work/initrd"

bios=()
[ -f /usr/share/qemu/qboot.rom ] && bios=(-bios /usr/share/qemu/qboot.rom)
echo "vm.sh: booting $pkg ($mode) under emulation"
log="$work/console.log"
set +e
timeout 45m qemu-system-x86_64 -accel tcg,thread=multi -M pc -cpu max -smp 2 -m 3072 "${bios[@]}" \
	-kernel "$kdir/vmlinux" -initrd "$work/initrd" \
	-append "console=ttyS0 acpi=off panic=-1 reboot=t quiet loglevel=${BRIG_VM_LOGLEVEL:-3} $cmdline" \
	-nographic -no-reboot -nic none 2>&1 | tee "$log"
set -e
code="$(tr -d '\r' <"$log" | sed -n 's/^BRIG-VM-EXIT=\([0-9]*\)$/\1/p' | tail -1)"
if [ -z "$code" ]; then
	echo "vm.sh: the guest ended without a test result" >&2
	exit 1
fi
exit "$code"
