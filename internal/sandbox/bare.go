package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/cli"
	"brig/internal/container"
	"brig/internal/lsm"
	"brig/internal/seccomp"
	"brig/internal/spec"
	"brig/internal/state"
)

// The lesser mode: where brig can't make namespaces — root without
// CAP_SYS_ADMIN, or a user whose user namespaces are refused, as inside
// Docker, Podman or a Kubernetes pod with their default seccomp profile
// and capabilities — `brig run --allow-degraded namespaces` still
// confines the command with what a process can take on itself: Landlock
// over files (the system directories read-only, --ro, --rw, a private
// TMPDIR; every other path refused, not hidden), over TCP (none unless
// --net host) and over signals, ptrace and abstract sockets (scoped to
// the sandbox); seccomp (brig's default, ptrace denied, socket(2) refused
// unless --net host); no_new_privs; no capabilities unless --cap-add;
// rlimits. What needs namespaces is refused with the flag that asks for
// it, never dropped silently.

// DegradedNamespaces is the --allow-degraded value of the lesser mode.
const DegradedNamespaces = "namespaces"

// NamespacesUsable says whether brig run can make the sandbox's namespaces
// here, and if not, why.
func NamespacesUsable() (bool, string) {
	if os.Geteuid() == 0 {
		if hasCap(unix.CAP_SYS_ADMIN) {
			return true, ""
		}
		return false, "brig runs as root without CAP_SYS_ADMIN here (inside a container?), so it can make no namespaces"
	}
	if !userNSAllowed() {
		return false, "user namespaces are disabled for unprivileged users here"
	}
	// Under a seccomp filter of someone else's (an engine's container),
	// namespaces may be refused or unusable: try them. Without one, a
	// user namespace is taken to work where the sysctls allow it, and the
	// run costs nothing more.
	if !seccompFiltered() {
		return true, ""
	}
	if err := probeUserNS(); err != nil {
		return false, fmt.Sprintf("a user namespace can't be made or used here (%v; inside a container?)", err)
	}
	return true, ""
}

// seccompFiltered says whether this process runs under a seccomp filter.
func seccompFiltered() bool {
	data, err := os.ReadFile("/proc/self/status")
	return err == nil && !strings.Contains(string(data), "\nSeccomp:\t0\n")
}

// hasCap says whether this process has capability c in its effective set
// (capget: no file to read on the start path).
func hasCap(c int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[c/32].Effective&(1<<(uint(c)%32)) != 0
}

// ProbeArg is the hidden argument of the namespace probe (ProbeMain).
const ProbeArg = "__brig-ns-probe"

// probeUserNS starts brig again in new user, mount, UTS and pid namespaces, as the sandbox's would be, where it does what the
// sandbox's init must (ProbeMain): making the namespaces is not enough
// inside a container whose seccomp profile refuses mount or sethostname
// to a process without CAP_SYS_ADMIN in the container (Podman's lets a
// user make namespaces but not use them).
func probeUserNS() error {
	cmd := exec.Command("/proc/self/exe", ProbeArg)
	cmd.SysProcAttr = &unix.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET | unix.CLONE_NEWPID,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	if msg := strings.TrimSpace(string(out)); msg != "" {
		return errors.New(msg)
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ProbeMain is the probe's child: root of its own user namespace, it
// makes its mounts private, mounts a tmpfs and sets a hostname, and says
// which of them failed. It never returns.
func ProbeMain() {
	for _, step := range []struct {
		what string
		do   func() error
	}{
		{"mount", func() error { return unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "") }},
		{"mount tmpfs", func() error { return unix.Mount("tmpfs", "/tmp", "tmpfs", 0, "size=64k") }},
		{"sethostname", func() error { return unix.Sethostname([]byte("brig-probe")) }},
	} {
		if err := step.do(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v", step.what, err)
			os.Exit(1)
		}
	}
	os.Exit(0)
}

// bareRefusals are what the lesser mode can't do, each naming its flag.
func bareRefusals(o *Options, r RunOptions) error {
	switch {
	case len(r.AllowNet) > 0:
		return cli.UsageError{Msg: "--allow-net: needs a network namespace, which can't be made here (use --net host, or run where namespaces can be made)"}
	case r.Observe != nil:
		return cli.UsageError{Msg: "brig learn: needs namespaces, which can't be made here"}
	case r.Report != "":
		return cli.UsageError{Msg: "--report: not without namespaces"}
	case r.Detach:
		return cli.UsageError{Msg: "-d: not without namespaces"}
	case o.Terminal:
		return cli.UsageError{Msg: "-t: not without namespaces (the command keeps the caller's terminal, if any)"}
	case len(o.Tmpfs) > 0:
		return cli.UsageError{Msg: "--tmpfs: needs a mount namespace, which can't be made here"}
	case o.Hostname != "":
		return cli.UsageError{Msg: "--hostname: needs a UTS namespace, which can't be made here"}
	case o.CPUs > 0:
		return cli.UsageError{Msg: "--cpus: needs a cgroup, which can't be had here"}
	case os.Geteuid() != 0 && len(o.CapAdd) > 0:
		return cli.UsageError{Msg: "--cap-add: without root and without a user namespace there is no capability to give"}
	case o.User != nil && os.Geteuid() != 0:
		return cli.UsageError{Msg: "-u: without root and without a user namespace the command runs as you"}
	case lsm.LandlockABI() < 1:
		return errors.New("landlock is not available on this kernel, and without namespaces it is what confines files: refusing to run")
	}
	for _, v := range o.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || filepath.Clean(parts[0]) != filepath.Clean(parts[1]) {
			return cli.UsageError{Msg: fmt.Sprintf("-v %q: another destination needs a mount namespace, which can't be made here (--ro or --rw give a path where it is)", v)}
		}
	}
	if len(WritablePaths(o)) > 0 && !slices.Contains(o.Unprotect, "all") {
		return cli.UsageError{Msg: "--rw: without a mount namespace, .git/hooks, .git/config and the other protected names (brig run --check) can't be kept read-only inside writable paths: add --unprotect all to run without that protection"}
	}
	return nil
}

// runBare is Run without namespaces.
func runBare(store state.Store, o *Options, r RunOptions, why string) (int, error) {
	if err := bareRefusals(o, r); err != nil {
		return 2, err
	}
	if err := checkPaths(o); err != nil {
		return 2, err
	}
	r.Warn(why + ": running with Landlock, seccomp, no_new_privs and rlimits only (--allow-degraded namespaces; brig run --check lists what each layer enforces)")
	tmp, err := os.MkdirTemp("", "brig-run-tmp-")
	if err != nil {
		return 1, fmt.Errorf("private TMPDIR: %w", err)
	}
	defer os.RemoveAll(tmp)
	s, err := bareSpec(o, tmp)
	if err != nil {
		return 2, err
	}
	return container.RunBare(store, s, container.BareOptions{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Warn: r.Warn})
}

// bareSpec is the spec of the lesser mode: no namespaces, no mounts, the
// caller's user, and the process layers.
func bareSpec(o *Options, tmp string) (*specs.Spec, error) {
	if len(o.Args) == 0 {
		return nil, errors.New("brig run --: give a command to run after --")
	}
	s := spec.Default(false)
	s.Root = &specs.Root{Path: "/"}
	s.Mounts = nil
	s.Linux = &specs.Linux{}
	p := s.Process
	p.Args = o.Args
	p.Terminal = false
	p.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + tmp, "TMPDIR=" + tmp}, o.Env...)
	p.Rlimits = nil
	p.NoNewPrivileges = true
	p.User = specs.User{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
	if o.User != nil {
		p.User = *o.User
	}
	// No capabilities unless asked for: nothing namespaces them here.
	var caps []string
	for _, c := range o.CapAdd {
		if _, ok := spec.CapabilityByName(capName(c)); !ok {
			return nil, fmt.Errorf("--cap-add %q: unknown capability", c)
		}
		caps = append(caps, capName(c))
	}
	p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	// Paths: read-only, writable, each as the host has it.
	var ro, rw []string
	for _, d := range SystemDirs {
		if _, err := os.Stat(d); err == nil {
			ro = append(ro, d)
		}
	}
	for _, x := range o.RO {
		abs, err := hostPath(x, "--ro")
		if err != nil {
			return nil, err
		}
		ro = append(ro, abs)
	}
	for _, x := range WritablePaths(o) {
		abs, err := hostPath(x, "--rw")
		if err != nil {
			return nil, err
		}
		rw = append(rw, abs)
	}
	for _, v := range o.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) == 3 && parts[2] == "ro" {
			abs, err := hostPath(parts[0], "-v")
			if err != nil {
				return nil, err
			}
			ro = append(ro, abs)
		}
	}
	p.Cwd = tmp
	if o.Cwd != "" {
		p.Cwd = o.Cwd
	} else if wd, err := os.Getwd(); err == nil && under(wd, append(append(slices.Clone(ro), rw...), tmp)) {
		p.Cwd = wd
	}
	if o.Pids == Unset {
		o.Pids = DefaultPids
	}
	memAsked := o.Memory > 0
	if o.Memory == Unset {
		o.Memory = DefaultMemory()
	}
	noCgroupRlimits(s, o, memAsked)
	var err error
	if s.Linux.Seccomp, err = seccompFor(o, caps); err != nil {
		return nil, err
	}
	if !o.NetHost && s.Linux.Seccomp != nil {
		seccomp.DenySockets(s.Linux.Seccomp)
	}
	ll, err := bareLandlock(ro, rw, tmp, o.NetHost)
	if err != nil {
		return nil, err
	}
	s.Annotations = map[string]string{lsm.LandlockAnnotation: ll}
	return s, nil
}

// under says whether dir is one of roots or below one.
func under(dir string, roots []string) bool {
	for _, r := range roots {
		if dir == r || strings.HasPrefix(dir, strings.TrimSuffix(r, "/")+"/") {
			return true
		}
	}
	return false
}

// bareDevices are the device files the command may read and write.
var bareDevices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx", "/dev/pts"}

// bareLandlock is the lesser mode's Landlock rule set, as the annotation
// takes it: every path the command may use, by what it may do there;
// TCP handled (none allowed) without --net host; signals, ptrace and
// abstract unix sockets scoped to the sandbox.
func bareLandlock(ro, rw []string, tmp string, netHost bool) (string, error) {
	type rule struct {
		AllowedAccess []string `json:"allowedAccess"`
		Paths         []string `json:"paths"`
	}
	read := []string{"execute", "read_file", "read_dir"}
	write := []string{"execute", "read_file", "read_dir", "write_file", "remove_dir", "remove_file", "make_dir", "make_reg", "make_sym", "make_sock", "make_fifo", "truncate"}
	var roDirs, roFiles, rwDirs, rwFiles, devDirs, devFiles []string
	add := func(path string, dirs, files *[]string) {
		fi, err := os.Stat(path)
		switch {
		case err != nil:
		case fi.IsDir():
			*dirs = append(*dirs, path)
		default:
			*files = append(*files, path)
		}
	}
	for _, x := range ro {
		add(x, &roDirs, &roFiles)
	}
	for _, x := range append(rw, tmp) {
		add(x, &rwDirs, &rwFiles)
	}
	for _, d := range bareDevices {
		add(d, &devDirs, &devFiles)
	}
	rules := []rule{{AllowedAccess: []string{"read_dir"}, Paths: []string{"/"}},
		{AllowedAccess: []string{"read_file", "read_dir"}, Paths: []string{"/proc", "/sys"}}}
	for _, r := range []rule{
		{read, roDirs}, {[]string{"execute", "read_file"}, roFiles},
		{write, rwDirs}, {[]string{"execute", "read_file", "write_file", "truncate"}, rwFiles},
		{[]string{"read_file", "write_file", "ioctl_dev"}, devFiles},
		{[]string{"read_file", "write_file", "read_dir", "ioctl_dev"}, devDirs},
	} {
		if len(r.Paths) > 0 {
			rules = append(rules, r)
		}
	}
	set := map[string]any{"scoped": []string{"abstract_unix_socket", "signal"}}
	if !netHost {
		set["handledAccessNetwork"] = []string{"bind_tcp", "connect_tcp"}
	}
	data, err := json.Marshal(map[string]any{"ruleset": set, "rules": map[string]any{"pathBeneath": rules}})
	return string(data), err
}
