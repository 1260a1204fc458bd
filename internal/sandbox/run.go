package sandbox

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"brig/internal/bpflsm"
	"brig/internal/cgroup"
	"brig/internal/cli"
	"brig/internal/container"
	"brig/internal/egress"
	"brig/internal/idmap"
	"brig/internal/lsm"
	"brig/internal/recorder"
	"brig/internal/report"
	"brig/internal/seccomp"
	"brig/internal/state"
)

// RunOptions say how to run a sandbox, beside what it is (Options).
type RunOptions struct {
	// Name is the container's (default brig-run-PID).
	Name string
	// Detach: in the background; the output goes to a log beside the
	// sandbox's root.
	Detach bool
	// AllowNet are --allow-net destinations: a fenced network of its own.
	AllowNet []string
	// DNSUpstream are the resolvers (HOST[:PORT]) the sandbox's DNS
	// responder asks for allowed names; default: the host's.
	DNSUpstream []string
	// Degraded are the layers the caller lets go where the host lacks them.
	Degraded []string
	Warn     func(string)
	// Debug, if set, is told which init sets the sandbox up, and why.
	Debug func(string)
	// Observe is called between create and start (brig learn's recorder;
	// see container.CreateOptions).
	Observe func(*container.Created) (func(int), error)
	// RecordCalls, with Observe, is brig learn's seccomp recorder: it is
	// handed brig's listener, which records every call the profile allows.
	RecordCalls func(*recorder.Listener)
	// RecordFiles, with RecordCalls: the listener records the files the
	// command uses too (brig learn --profile-out without root).
	RecordFiles bool
	// AnsweredNames, with --allow-net, is handed the fence's record of
	// the names its DNS responder answered, by address (brig learn).
	AnsweredNames func(func() map[netip.Addr][]string)
	// Report: when the command ends, write what the sandbox refused to
	// ReportTo, as "text" or "json" ("": no report).
	Report   string
	ReportTo io.Writer
	// ReportFiles: without root (no eBPF recorder), the report's file
	// list comes from the seccomp listener looking at each path-taking
	// call, which then waits for brig (--report-files).
	ReportFiles bool
}

// reportInto has the layers feed rep: seccomp's denials (its listener
// answers them with the profile's errno), the cgroup's events read once
// the command has ended, before the container goes, and, as root, the
// paths the command failed on (recorder.Refusals, from its exec on): what
// the sandbox doesn't show or keeps read-only.
func reportInto(rep *report.Report, co *container.CreateOptions, o *Options, prot []protection, filesRootless bool) {
	if co.Spec.Linux != nil && co.Spec.Linux.Seccomp != nil {
		co.ReportDenials = true
		co.OnDenials = func(ds []recorder.Denial) {
			for _, d := range ds {
				if d.Errno == "ENOSYS" {
					continue // a call newer than the profile: libc falls back
				}
				rep.Add(report.Entry{Layer: "seccomp", What: d.Name + " (" + d.Errno + ")", Count: d.Count, Processes: d.Processes,
					Allow: allowCall(d.Name, o)})
			}
		}
	}
	// Landlock's TCP port rule refuses a connect before any packet
	// leaves, so the fence never sees it: the listener is sent each
	// connect, and a TCP one to a port the rule doesn't allow is listed.
	var landlocked func()
	if co.ReportDenials && o.Egress != nil && len(o.Egress.Ports) > 0 && lsm.LandlockABI() >= 4 {
		var mu sync.Mutex
		refused := map[netip.AddrPort]int{}
		co.OnConnect = func(d netip.AddrPort, stream bool) {
			if stream && !slices.Contains(o.Egress.Ports, d.Port()) {
				mu.Lock()
				refused[d]++
				mu.Unlock()
			}
		}
		landlocked = func() {
			mu.Lock()
			defer mu.Unlock()
			for d, n := range refused {
				allow := "--allow-net " + d.String()
				if d.Addr().IsLoopback() {
					allow = fmt.Sprintf("--allow-net localhost:%d", d.Port())
				}
				rep.Add(report.Entry{Layer: "network", What: d.String() + " (Landlock: a port not allowed)", Count: n, Allow: allow})
			}
		}
	}
	// Without root the eBPF recorder can't load: with --report-files the
	// seccomp listener looks at the path-taking calls instead (slower:
	// each waits for it).
	var watched *recorder.Listener
	if filesRootless && runtime.GOARCH == "amd64" && recorder.Supported() != nil && co.ReportDenials {
		co.WatchPaths = func(l *recorder.Listener) { watched = l }
	}
	spec := co.Spec
	addObserver(co, func(c *container.Created) func(int) {
		// Without the file recorder the other layers still report, and
		// the report says its file list is missing.
		var refusals *recorder.Refusals
		noFiles := "the sandbox has no cgroup v2 directory to record in"
		if err := recorder.Supported(); err != nil {
			noFiles = err.Error()
			switch {
			case runtime.GOARCH != "amd64":
			case !filesRootless:
				noFiles += "; --report-files lists them without root (slower: each path call waits for brig)"
			case co.WatchPaths == nil:
				noFiles += "; without a seccomp profile, --report-files has no listener to watch through"
			}
		} else if dir := c.CgroupPaths[""]; dir != "" {
			if refusals, err = recorder.AttachRefusals(dir); err != nil {
				noFiles, refusals = "the recorder could not attach: "+err.Error(), nil
			}
		}
		return func(code int) {
			if refusals == nil && watched == nil {
				rep.Incomplete("files", "no file list: "+noFiles)
			} else {
				var snap recorder.RefusalSnapshot
				if refusals != nil {
					var err error
					snap, err = refusals.Snapshot()
					refusals.Close()
					if err != nil {
						rep.Incomplete("files", err.Error())
					}
				} else {
					snap = watched.PathRefusals()
				}
				es, cut, unplaced := fileEntries(snap.Paths, spec, prot, spec.Process.Cwd, hostExists)
				for _, e := range es {
					rep.Add(e)
				}
				if snap.Dropped > 0 {
					rep.Incomplete("files", fmt.Sprintf("%d failed calls on paths beyond the first %d distinct ones were not kept", snap.Dropped, recorder.RefusalEntries))
				}
				if cut > 0 {
					rep.Incomplete("files", fmt.Sprintf("%d paths longer than %d bytes can't be named", cut, recorder.MaxPath-1))
				}
				if unplaced > 0 {
					rep.Incomplete("files", fmt.Sprintf("%d relative paths, resolved against a directory fd, can't be placed", unplaced))
				}
			}
			oom, pids := cgroup.Events(c.CgroupPaths)
			if oom > 0 {
				rep.Add(report.Entry{Layer: "limits", What: "killed by the OOM killer (memory limit)", Count: int(oom), Allow: "--memory SIZE, larger"})
			}
			if pids > 0 {
				rep.Add(report.Entry{Layer: "limits", What: "fork refused at the process limit", Count: int(pids), Allow: "--pids-limit N, larger"})
			}
			if landlocked != nil {
				landlocked()
			}
		}
	})
}

// addObserver has co.Observe call next too, after the observer it has:
// once the container is created, and their ends when it has ended (next's
// first).
func addObserver(co *container.CreateOptions, next func(c *container.Created) func(code int)) {
	prev := co.Observe
	co.Observe = func(c *container.Created) (func(int), error) {
		done := func(int) {}
		if prev != nil {
			var err error
			if done, err = prev(c); err != nil {
				return nil, err
			}
		}
		end := next(c)
		return func(code int) {
			end(code)
			done(code)
		}, nil
	}
}

// allowCall is the flag that would let a call through brig run's profile.
func allowCall(name string, o *Options) string {
	switch {
	case slices.Contains(seccomp.Tracing, name) && !o.AllowPtrace:
		return "--allow-ptrace"
	case seccomp.CapabilityFor(name) != "":
		return "--cap-add " + strings.TrimPrefix(seccomp.CapabilityFor(name), "CAP_")
	}
	return "--security-opt seccomp=PROFILE, one that allows " + name + " (brig learn -o PROFILE writes one)"
}

// checkPaths says, before anything else is tried with them, which host
// path of --ro, --rw or -v is missing.
func checkPaths(o *Options) error {
	for _, p := range o.RO {
		if _, err := hostPath(p, "--ro"); err != nil {
			return err
		}
	}
	for _, p := range o.RW {
		if _, err := hostPath(p, "--rw"); err != nil {
			return err
		}
	}
	for _, v := range o.Volumes {
		if src, _, ok := strings.Cut(v, ":"); ok {
			if _, err := hostPath(src, "-v"); err != nil {
				return err
			}
		}
	}
	return nil
}

// dnsUpstream are the resolvers the DNS responder asks: given (HOST or
// HOST:PORT), or the host's.
func dnsUpstream(given []string) ([]string, error) {
	if len(given) == 0 {
		hr, _ := egress.HostResolvers() // none: fine unless a name is allowed
		return hr, nil
	}
	var out []string
	for _, u := range given {
		ap, err := netip.ParseAddrPort(u)
		if err != nil {
			a, aerr := netip.ParseAddr(u)
			if aerr != nil {
				return nil, cli.UsageError{Msg: fmt.Sprintf("--dns-upstream %q: want IP or IP:PORT", u)}
			}
			ap = netip.AddrPortFrom(a, 53)
		}
		out = append(out, ap.String())
	}
	return out, nil
}

// Run runs the command confined, through the same lifecycle as any
// container: its root directory under the state root, the egress fence
// where asked, id-mapped writable paths where the filesystem allows it,
// the spec Build makes; everything is removed when it ends (when it
// detaches: by brig delete, or the next run). It returns the command's
// exit code, or the one to exit with when err is set (2 for bad input).
func Run(store state.Store, o *Options, r RunOptions) (int, error) {
	id := r.Name
	if id == "" {
		id = "brig-run-" + strconv.Itoa(os.Getpid())
	}
	if ok, why := NamespacesUsable(); !ok {
		if !slices.Contains(r.Degraded, DegradedNamespaces) {
			return 1, fmt.Errorf("%s: add --allow-degraded namespaces to run the command confined by Landlock, seccomp, no_new_privs and rlimits only (brig run --check lists what each layer enforces)", why)
		}
		return runBare(store, o, r, why)
	}
	if err := os.MkdirAll(store.Root, 0o711); err != nil {
		return 1, err
	}
	// The sandbox's root directory lies in the state root, and the
	// command's user namespace reaches it as another user: the state root
	// must be searchable, as /run/brig (0711) is.
	if st, err := os.Stat(store.Root); err == nil && st.Mode().Perm()&0o001 == 0 {
		return 2, cli.UsageError{Msg: fmt.Sprintf("--root %s: mode %#o; brig run needs it searchable by others (0711, as brig makes /run/brig): the command reaches its root directory there from its own user namespace", store.Root, st.Mode().Perm())}
	}
	// What a killed brig run -- left behind (its process died with it).
	container.CollectSandboxes(store, r.Warn)
	rootDir := filepath.Join(store.Root, container.SandboxRootPrefix+id)
	if err := os.Mkdir(rootDir, 0o755); err != nil {
		return 1, fmt.Errorf("sandbox root: %w", err)
	}
	keepRoot := false // a detached sandbox's root outlives this brig
	defer func() {
		if !keepRoot {
			os.RemoveAll(rootDir)
			os.Remove(rootDir + ".log")
		}
	}()
	if r.Detach && (o.Terminal || len(r.AllowNet) > 0) {
		return 2, cli.UsageError{Msg: "-d: not with -t or --allow-net (a terminal and an egress fence live with the brig that runs them)"}
	}
	if r.Detach && r.Observe != nil {
		return 2, cli.UsageError{Msg: "-d: not with a recorder (brig learn runs in the foreground)"}
	}
	if err := PrepareRoot(rootDir); err != nil {
		return 1, err
	}
	var rep *report.Report
	if r.Report != "" {
		if r.Detach {
			return 2, cli.UsageError{Msg: "--report: not with -d (the report is written when the command ends)"}
		}
		rep = &report.Report{}
		// Registered before the fence's clean-up, so it runs after it.
		defer func() { rep.Write(r.ReportTo, r.Report) }()
	}
	if len(r.AllowNet) > 0 {
		upstream, err := dnsUpstream(r.DNSUpstream)
		if err != nil {
			return 2, err
		}
		dests, err := egress.Parse(r.AllowNet, egress.UpstreamLookup(upstream))
		if err != nil {
			return 2, err
		}
		names := egress.Names(dests)
		if len(names) > 0 && len(upstream) == 0 {
			return 2, cli.UsageError{Msg: "--allow-net: names need a resolver: the host's /etc/resolv.conf names none (give --dns-upstream IP)"}
		}
		hosts := rootDir + ".hosts"
		h := o.Hostname
		if h == "" {
			h = "sandbox"
		}
		if err := os.WriteFile(hosts, egress.Hosts(h, dests), 0o644); err != nil {
			return 1, fmt.Errorf("--allow-net: %w", err)
		}
		defer os.Remove(hosts)
		resolv := rootDir + ".resolv"
		if err := os.WriteFile(resolv, egress.Resolv(), 0o644); err != nil {
			return 1, fmt.Errorf("--allow-net: %w", err)
		}
		defer os.Remove(resolv)
		fence, err := egress.Start(egress.Config{Allows: egress.Allows(dests), Loopback: egress.LoopbackPorts(dests),
			Names: names, Upstream: upstream, Rootless: os.Geteuid() != 0, UID: os.Geteuid(), GID: os.Getegid()})
		if err != nil {
			return 1, err
		}
		defer fence.Close()
		defer func() {
			if rep == nil {
				if s := egress.RefusedSummary(fence.Refused()); s != "" {
					r.Warn(s)
				}
				return
			}
			for name, n := range fence.Refused() {
				rep.Add(report.Entry{Layer: "dns", What: name, Count: n, Allow: "--allow-net " + name + ":PORT"})
			}
			dests, err := fence.RefusedDestinations()
			if err != nil {
				r.Warn("--report: " + err.Error())
			}
			for _, d := range dests {
				dst := netip.AddrPortFrom(d.Addr, d.Port).String() // [v6]:port
				rep.Add(report.Entry{Layer: "network", What: dst, Allow: "--allow-net " + dst})
			}
		}()
		o.Egress = &Egress{NetNS: fence.NetNS(), UserNS: fence.UserNS(), Hosts: hosts, Resolv: resolv}
		if r.AnsweredNames != nil {
			r.AnsweredNames(fence.Answered)
		}
		if ports, ok := egress.Ports(dests); ok {
			// And the responder's port, for DNS over TCP (nftables
			// passes it on loopback only).
			o.Egress.Ports = append(ports, 53)
		}
	}
	if err := checkPaths(o); err != nil {
		return 2, err
	}
	if os.Geteuid() == 0 {
		// Writable host paths are id-mapped into the sandbox's user
		// namespace where their filesystems allow it.
		paths := WritablePaths(o)
		o.IdmapRW = len(paths) > 0
		for _, p := range paths {
			abs, _ := filepath.Abs(p)
			if err := idmap.Probe(abs, RootMapping(), RootMapping()); err != nil {
				r.Warn(fmt.Sprintf("%s: %v: the sandbox keeps the host's user namespace (root inside is root outside)", p, err))
				o.IdmapRW = false
				break
			}
		}
	}
	if os.Geteuid() != 0 && !cgroup.Usable() {
		o.NoCgroup = true
		o.DegradedCgroup = slices.Contains(r.Degraded, "cgroup")
		if o.DegradedCgroup && (o.Memory > 0 || o.CPUs > 0 || o.Pids > 0) {
			r.Warn("no cgroup: this user has no delegated cgroup here, so the limits asked for are left out but for rlimits: " +
				"--pids-limit counts the sandbox's processes, --memory bounds each process's address space, --cpus is not applied")
		}
	}
	s, watch, err := build(o, rootDir)
	if err != nil {
		return 2, err
	}
	// The container's root makes its mount points in the empty root.
	if m := s.Linux.UIDMappings; len(m) > 0 && m[0].ContainerID == 0 && int(m[0].HostID) != os.Geteuid() {
		if err := os.Chown(rootDir, int(m[0].HostID), int(s.Linux.GIDMappings[0].HostID)); err != nil {
			return 1, fmt.Errorf("sandbox root: %w", err)
		}
	}
	co := container.CreateOptions{ID: id, Bundle: rootDir, Spec: s, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Warn: r.Warn, Debug: r.Debug, Rootless: os.Geteuid() != 0, DieWithParent: !r.Detach, OptionalLimits: slices.Contains(r.Degraded, "cgroup"),
		QuietNoCgroup: true, // brig run --check says it once
		NewSession:    true, // no terminal of its own: no controlling one either
		// no cpuset limit: no cpuset cgroup (about 4 ms of a run, cgroup.Options)
		CpusetIfLimited: true,
		Observe:         r.Observe, RecordCalls: r.RecordCalls, RecordFiles: r.RecordFiles}
	if r.Observe != nil && s.Linux != nil && s.Linux.Seccomp != nil {
		// What the base profile denies is never recorded (seccomp acts
		// first): it is reported at exit, as --report-denials does.
		co.ReportDenials = true
	}
	if rep != nil {
		reportInto(rep, &co, o, watch, r.ReportFiles)
	}
	guardInto(&co, watch, !o.AllowPtrace, filepath.Join(store.Root, bpflsm.CacheDirName), r.Detach, r.Warn)
	if r.Detach {
		// In the background: no stdin; output to a log file beside the
		// sandbox's root, removed with it.
		null, err := os.Open(os.DevNull)
		if err != nil {
			return 1, err
		}
		defer null.Close()
		logf, err := os.OpenFile(rootDir+".log", os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o600)
		if err != nil {
			return 1, fmt.Errorf("-d: %w", err)
		}
		defer logf.Close()
		co.Stdin, co.Stdout, co.Stderr = null, logf, logf
	}
	code, err := container.Run(store, co, r.Detach)
	if !r.Detach {
		for _, c := range changed(watch) {
			r.Warn(fmt.Sprintf("protected path: %s by the sandboxed command; review it before a tool on the host reads it", c))
		}
	}
	if err == nil && r.Detach {
		keepRoot = true
		fmt.Println(id)
	}
	if err != nil && co.Rootless && strings.Contains(err.Error(), "linux.resources: limits need a cgroup") {
		return 1, fmt.Errorf("%w (or add --allow-degraded cgroup to run without the limits)", err)
	}
	if err != nil {
		return 1, err
	}
	return code, nil
}

// guardInto has the BPF LSM programs (internal/bpflsm) refuse, for the
// run, what no mount can: making the missing protected paths, replacing
// the protected links, and (noAttach) one sandboxed process opening
// another's memory through /proc. Where they can't load (without root,
// or without the BPF LSM) the run goes on without them: `brig run
// --check` says so, and a protected path made during the run is named
// when it ends. A run in the background (-d) outlives the brig command:
// it keeps its entries where the programs are pinned (then the next
// guarded run after its deletion takes them out), and has none
// otherwise. A kernel that refuses LSM programs (EPERM) is said by
// --check, not by every run; any other failure is warned.
func guardInto(co *container.CreateOptions, prot []protection, noAttach bool, cacheDir string, detach bool, warn func(string)) {
	entries := guardEntries(prot)
	if (len(entries) == 0 && !noAttach) || bpflsm.Supported() != nil || (detach && !bpflsm.Pinnable()) {
		return
	}
	addObserver(co, func(c *container.Created) func(int) {
		dir := c.CgroupPaths[""]
		if dir == "" {
			return func(int) {}
		}
		g, err := bpflsm.Attach(bpflsm.Rules{Cgroup: dir, Entries: entries, NoAttach: noAttach, CacheDir: cacheDir})
		if err != nil {
			if !errors.Is(err, unix.EPERM) && warn != nil {
				warn(fmt.Sprintf("%v: the run goes on without the BPF LSM guard (brig run --check)", err))
			}
			return func(int) {}
		}
		return func(int) {
			if !detach || !g.Keep() {
				g.Close()
			}
		}
	})
}
