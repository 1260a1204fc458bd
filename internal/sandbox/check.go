package sandbox

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"brig/internal/bpflsm"
	"brig/internal/cgroup"
	"brig/internal/egress"
	"brig/internal/lsm"
	"brig/internal/recorder"
)

// Check lists, layer by layer, what this host lets `brig run --` enforce.
func Check() []string {
	yes := func(ok bool, s string) string {
		if ok {
			return "yes  " + s
		}
		return "no   " + s
	}
	abi := lsm.LandlockABI()
	nsOK, why := NamespacesUsable()
	ns := "namespaces: mount, pid, net, ipc, uts, cgroup, and a user namespace"
	if !nsOK {
		ns += ": " + why + "; --allow-degraded namespaces runs without them (below)"
	}
	out := []string{
		yes(nsOK, ns),
		yes(true, "seccomp: built-in default profile"),
		yes(abi > 0, fmt.Sprintf("landlock (ABI %d)", abi)),
		yes(cgroup.Usable(), fmt.Sprintf("cgroup limits (%s; without root only where delegated)%s", cgroup.Mode(), noCgroupNote())),
		yes(true, fmt.Sprintf("default bounds: %d processes, %d MiB of memory (half the host's), /tmp of %s of the host's memory (--pids-limit 0, --memory 0 lift them)",
			DefaultPids, DefaultMemory()>>20, TmpSize)),
		yes(egress.Available() == nil && (os.Geteuid() == 0 || unix.Access("/dev/net/tun", unix.R_OK|unix.W_OK) == nil),
			"egress allow-list, --allow-net (slirp4netns; without root, /dev/net/tun usable by you); "+ipFamilies()),
		yes(runtime.GOARCH == "amd64", learnRecorder()),
		yes(runtime.GOARCH == "amd64" && recorder.Supported() == nil, "--report lists files: paths not shown, writes refused by a read-only mount or Landlock (eBPF; as root)"),
		yes(true, "read-only inside writable paths (--unprotect NAME to allow one): "+strings.Join(Protected, " ")+
			"; and the hooks and config of the git directory a .git file names, of submodules, and core.hooksPath"),
		guardCheck(),
		yes(lsm.AppArmorEnabled(), "apparmor"),
		yes(lsm.SELinuxEnabled(), "selinux"),
	}
	if !nsOK {
		out = append(out, yes(abi > 0, "without namespaces (--allow-degraded namespaces): Landlock confines files (the system directories read-only, "+
			"--ro, --rw, a private TMPDIR; other paths refused, not hidden), TCP (none unless --net host) and signals, ptrace and abstract sockets "+
			"(to the sandbox's own processes); seccomp refuses socket(2) unless --net host; no_new_privs; no capabilities unless --cap-add; "+
			"rlimits. Not available: a private /tmp, pid/ipc/uts isolation, --allow-net, --tmpfs, -v to another path, -t, -d, --report, brig learn; "+
			"the protected names can't be kept read-only inside --rw paths (it needs --unprotect all)"))
	}
	return out
}

func ipFamilies() string {
	if egress.HostIPv6() {
		return "IPv4 and IPv6"
	}
	return "IPv4 only: the host's IPv6 is off"
}

// learnRecorder says how brig learn records the calls here.
func learnRecorder() string {
	if runtime.GOARCH != "amd64" {
		return "brig learn: recording is built for x86-64"
	}
	if err := recorder.Supported(); err != nil {
		return "brig learn: through brig's seccomp listener (" + err.Error() + "): every system call waits for brig, slower; --profile-out's files from the same listener"
	}
	return "brig learn: eBPF recorder (about 10 % while it runs); --recorder seccomp works without root, slower"
}

func noCgroupNote() string {
	if cgroup.Usable() {
		return ""
	}
	return fmt.Sprintf(": you have none here, so sandboxes run in your cgroup, bounded by rlimits (%d processes; "+
		"--pids-limit and --memory, with --allow-degraded cgroup, become per-sandbox process and per-process address-space rlimits)", DefaultPids)
}

func userNSAllowed() bool {
	if data, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(data)) == "0" {
		return false
	}
	data, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
	return err != nil || strings.TrimSpace(string(data)) != "0"
}

// Refuse fails when a layer the defaults include can't be applied here,
// unless allowed names it: no silent fallback to running unconfined.
func Refuse(allowed []string) error {
	for _, a := range allowed {
		if !slices.Contains([]string{"landlock", "userns", "cgroup", DegradedNamespaces}, a) {
			return fmt.Errorf("--allow-degraded %q: want landlock, userns, cgroup or namespaces", a)
		}
	}
	if lsm.LandlockABI() == 0 && !slices.Contains(allowed, "landlock") {
		return fmt.Errorf("landlock is not available on this kernel: refusing to run without it (add --allow-degraded landlock to run anyway)")
	}
	if os.Geteuid() != 0 && !userNSAllowed() && !slices.Contains(allowed, "userns") && !slices.Contains(allowed, DegradedNamespaces) {
		return fmt.Errorf("user namespaces are disabled for unprivileged users here: brig can't make the sandbox's namespaces without root (add --allow-degraded namespaces to run confined by Landlock, seccomp, no_new_privs and rlimits only, or run as root)")
	}
	return nil
}

// guardCheck says whether the BPF LSM guard (guardInto) runs here.
func guardCheck() string {
	what := "protected names a writable path lacks can't be made there, protected links can't be replaced, " +
		"and no sandboxed process can open another's memory through /proc (BPF LSM programs; not for -d)"
	if err := bpflsm.Probe(); err != nil {
		return "no   " + what + ": " + err.Error() + "; a protected path made during a run is named when it ends"
	}
	return "yes  " + what
}
