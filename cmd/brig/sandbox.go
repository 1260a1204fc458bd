package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/container"
	"brig/internal/recorder"
	"brig/internal/sandbox"
)

const sandboxUsage = `Usage: brig run [flags] -- CMD [ARGS...]

Runs CMD confined, with no image, bounded by default (2048 processes, half
the host's memory, a /tmp of a quarter of it; --pids-limit 0 and
--memory 0 lift a bound): a read-only view of the host's /usr, /bin,
/sbin, /lib*, /etc and /opt, a private writable /tmp, fresh /proc, a minimal
/dev, every namespace (no network unless --net host or --allow-net), Docker's default
capabilities, no_new_privs, brig's default seccomp profile (with ptrace
between the command's processes denied), and Landlock over the same paths
where the kernel has it. Inside writable paths, git hooks and config and
shell and editor start-up files stay read-only (--check lists them).

Examples:
  brig run -- id
  brig run --rw . -- make test            # the current directory writable
  brig run --memory 512m --pids-limit 100 -- ./untrusted-tool
  brig run --cap-drop ALL --security-opt seccomp=profile.json -- sh -c 'echo hi'
  brig run --allow-net pypi.org:443 --allow-net 192.0.2.7 -- pip download x
                                          # only these destinations answer
  brig run --rw . --allow-net localhost:5432 -- ./migrate
                                          # the host's database, nothing else
  brig run --profile sandbox.yaml -- ./agent    # settings from a file:

    # sandbox.yaml: keys are the flags' names; lists repeat a flag
    rw: [.]
    ro: [/data]
    home: ro
    memory: 512m
    pids-limit: 200
    cap-drop: [ALL]
    env: [LANG=C.UTF-8]
    allow-net: [api.example.com:443]

--allow-net HOST[:PORT] (an IPv4 or IPv6 address or prefix — IPv6 with a
port in brackets, [2001:db8::1]:443 — a name, or *.DOMAIN for any name
below DOMAIN): the command gets a network namespace whose
only way out is slirp4netns (user-mode networking from the host's stack),
filtered by nftables rules the command can't change (it has no
CAP_NET_ADMIN or CAP_NET_RAW there), and, when every destination names a
port, Landlock lets connect() reach only those ports (loopback included).
The sandbox's only resolver is brig's: it answers the allowed names (asking
the host's resolver, or --dns-upstream), lets out the addresses they
resolve to for their TTL (at least 30 s), and refuses every other name,
which brig lists when the command ends. Any client works; there is no
proxy to ignore. Without root this needs /dev/net/tun usable by the caller.

--allow-net localhost:PORT (or 127.0.0.1:PORT): that TCP port of the
host's loopback — a dev server, a database — answers at the sandbox's
own 127.0.0.1:PORT (brig forwards each connection); no other port of the
host's loopback is reachable.
`

// minMemory is the least memory limit a sandbox starts under (Docker's
// minimum too): below it, brig's own start-up is killed.
const minMemory = 6 << 20

// sandboxValues are the values of `brig run --` flags.
type sandboxValues struct {
	env, ro, rw, vols, tmpfs, capAdd, capDrop, secOpts            stringList
	allowNet, dnsUpstream, unprotect, degraded                    stringList
	home, cwd, user, hostname, name, net, memory, pids, repFormat string
	cpus                                                          float64
	tty, detach, check, allowPtrace, rep                          bool
}

// sandboxFlags are the flags of `brig run --` (and brig learn): the one
// list of their names, which a --profile file's settings are too.
func sandboxFlags(cmdName string) (*cmdFlags, *sandboxValues) {
	v := &sandboxValues{}
	fs := newFlags(cmdName, "[flags] -- CMD [ARGS...]")
	fs.usage = func(w io.Writer) { fmt.Fprint(w, sandboxUsage) }
	fs.Var(&v.env, "e", "set an environment variable (repeatable)")
	fs.Var(&v.env, "env", "same as -e")
	fs.Var(&v.ro, "ro", "add a host path, read-only (repeatable)")
	fs.Var(&v.rw, "rw", "add a host path, writable (repeatable)")
	fs.Var(&v.vols, "v", "bind SRC:DST[:ro] (repeatable)")
	fs.Var(&v.tmpfs, "tmpfs", "mount a tmpfs at DST[:OPTIONS] (repeatable)")
	fs.Var(&v.capAdd, "cap-add", "add a capability (repeatable)")
	fs.Var(&v.capDrop, "cap-drop", "drop a capability, or ALL (repeatable)")
	fs.Var(&v.secOpts, "security-opt", "seccomp=FILE|unconfined, no-new-privileges")
	fs.String("profile", "", "load settings from a YAML file (keys are these flags' names)")
	fs.StringVar(&v.home, "home", "none", "the caller's home directory: none, ro or rw")
	fs.StringVar(&v.cwd, "w", "", "working directory (default: the current one if visible, else /tmp)")
	fs.StringVar(&v.user, "u", "", "UID[:GID] to run as")
	fs.StringVar(&v.hostname, "hostname", "", "hostname (default sandbox)")
	fs.StringVar(&v.name, "name", "", "container name (default brig-run-PID)")
	fs.StringVar(&v.net, "net", "none", "none or host")
	fs.StringVar(&v.memory, "memory", "", "memory limit (k, m, g; default: half the host's memory; 0: none)")
	fs.Float64Var(&v.cpus, "cpus", 0, "CPU limit in CPUs")
	fs.StringVar(&v.pids, "pids-limit", "", "process (and thread) limit (default 2048; 0: none)")
	fs.BoolVar(&v.tty, "t", false, "allocate a terminal")
	fs.BoolVar(&v.detach, "d", false, "run in the background: print the name and return; output goes to ROOT/.rootfs-NAME.log (brig delete NAME, or the next brig run once it ended, removes it)")
	fs.Bool("read-only", true, "the root is read-only (always; /tmp stays writable)")
	fs.BoolVar(&v.check, "check", false, "print what this host can enforce, and exit")
	fs.Var(&v.allowNet, "allow-net", "let the command reach HOST[:PORT] and nothing else: an IPv4 or IPv6 address or prefix ([v6]:PORT), a name, *.DOMAIN, localhost:PORT (repeatable)")
	fs.Var(&v.dnsUpstream, "dns-upstream", "with --allow-net: the resolver (IP[:PORT]) asked for allowed names (default: the host's /etc/resolv.conf; repeatable)")
	fs.BoolVar(&v.allowPtrace, "allow-ptrace", false, "let one sandboxed process trace another (ptrace, process_vm_readv/writev, pidfd_getfd: for debuggers); denied by default")
	fs.BoolVar(&v.rep, "report", false, "when the command ends, list what the sandbox refused (seccomp, files (as root), DNS, network, limits) and the flag that would allow each, on stderr")
	fs.StringVar(&v.repFormat, "report-format", "text", "the report's format: text or json")
	fs.Var(&v.unprotect, "unprotect", "leave NAME writable inside --rw paths: one of the protected names (see --check), or all (repeatable)")
	fs.Var(&v.degraded, "allow-degraded", "run even if this layer can't be applied here: landlock, userns, cgroup, namespaces (none can be made, as inside a container: Landlock, seccomp, no_new_privs and rlimits only; see --check) (repeatable)")
	fs.Bool("i", true, "keep stdin open (always)")
	return fs, v
}

// cmdSandbox is `brig run [flags] -- CMD`.
func cmdSandbox(g *global, args []string) (int, error) {
	return runSandbox(g, "run", args, recording{})
}

// recording is brig learn's hooks into the run (none for brig run):
// observe is called between create and start, calls is handed brig's
// seccomp listener when it records the calls.
type recording struct {
	observe func(*container.Created) (func(int), error)
	calls   func(*recorder.Listener)
	names   func(func() map[netip.Addr][]string)
}

// runSandbox runs CMD confined; rec.observe, when set, is called between
// create and start (brig learn attaches its recorder there).
func runSandbox(g *global, cmdName string, args []string, rec recording) (int, error) {
	fs, v := sandboxFlags(cmdName)
	// --profile FILE: its settings come first, so flags given on the
	// command line add to them or override them.
	for i := 0; i+1 < len(args) && args[i] != "--"; i++ {
		if args[i] == "--profile" || args[i] == "-profile" {
			pre, err := sandbox.ProfileArgs(args[i+1], func(k string) bool { return fs.Lookup(k) != nil })
			if err != nil {
				return 2, err
			}
			args = append(append(pre, args[:i]...), args[i+2:]...)
			break
		}
	}
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if a := fs.Args(); len(a) == 1 && (a[0] == "--help" || a[0] == "-h" || a[0] == "-help") {
		// brig run -- --help: no program is called that.
		fs.PrintHelp(os.Stdout)
		return 0, nil
	}
	if v.check {
		for _, l := range sandbox.Check() {
			fmt.Println(l)
		}
		return 0, nil
	}
	if err := sandbox.Refuse(v.degraded); err != nil {
		return 1, err
	}
	switch v.home {
	case "none":
	case "ro", "rw":
		h, err := os.UserHomeDir()
		if err != nil {
			return 2, usagef("--home %s: %v", v.home, err)
		}
		if v.home == "ro" {
			v.ro = append(v.ro, h)
		} else {
			v.rw = append(v.rw, h)
		}
	default:
		return 2, usagef("--home %q: want none, ro or rw", v.home)
	}
	o := &sandbox.Options{Args: fs.Args(), Env: v.env, Cwd: v.cwd, RO: v.ro, RW: v.rw, Volumes: v.vols, Tmpfs: v.tmpfs,
		Hostname: v.hostname, CapAdd: v.capAdd, CapDrop: v.capDrop, Terminal: v.tty, CPUs: v.cpus, Pids: sandbox.Unset, Memory: sandbox.Unset,
		Unprotect: v.unprotect, AllowPtrace: v.allowPtrace}
	switch v.net {
	case "none":
	case "host":
		o.NetHost = true
	default:
		return 2, usagef("--net %q: want none or host", v.net)
	}
	for _, so := range v.secOpts {
		switch {
		case strings.HasPrefix(so, "seccomp="):
			o.Seccomp = strings.TrimPrefix(so, "seccomp=")
		case so == "no-new-privileges" || so == "no-new-privileges:true":
		default:
			return 2, usagef("--security-opt %q: want seccomp=FILE|unconfined or no-new-privileges", so)
		}
	}
	if v.pids != "" {
		n, err := strconv.ParseInt(v.pids, 10, 64)
		if err != nil || n < 0 {
			return 2, usagef("--pids-limit %q: want a number (0: no limit)", v.pids)
		}
		o.Pids = n
	}
	if v.memory == "0" {
		o.Memory = 0
	} else if v.memory != "" {
		n, err := parseBytes(v.memory)
		if err != nil {
			return 2, usagef("--memory %q: %v", v.memory, err)
		}
		if n < minMemory {
			return 2, usagef("--memory %s: below the least a sandbox starts under (6m); 0 means no limit", v.memory)
		}
		o.Memory = n
	}
	if v.user != "" {
		uid, gid, err := parseUser(v.user)
		if err != nil {
			return 2, usagef("-u: %v", err)
		}
		o.User = &specs.User{UID: uid, GID: gid}
	}
	runOpts := sandbox.RunOptions{Name: v.name, Detach: v.detach, AllowNet: v.allowNet, DNSUpstream: v.dnsUpstream,
		Degraded: v.degraded, Warn: g.logw.Warn, Observe: rec.observe, RecordCalls: rec.calls, AnsweredNames: rec.names}
	if v.rep {
		if v.repFormat != "text" && v.repFormat != "json" {
			return 2, usagef("--report-format %q: want text or json", v.repFormat)
		}
		runOpts.Report, runOpts.ReportTo = v.repFormat, os.Stderr
	}
	code, err := sandbox.Run(g.store(), o, runOpts)
	var ue *sandbox.UsageError
	if errors.As(err, &ue) {
		return code, usagef("%s", ue.Msg)
	}
	return code, err
}
