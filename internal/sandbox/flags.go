package sandbox

import (
	"flag"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/cli"
)

// Flags are the values of `brig run --`'s flags (and brig learn's). Its
// Define is the one list of their names, which a --profile file's
// settings are too (NotInProfile are the exceptions).
type Flags struct {
	env, ro, rw, vols, tmpfs, capAdd, capDrop, secOpts            cli.StringList
	allowNet, dnsUpstream, unprotect, degraded                    cli.StringList
	home, cwd, user, hostname, name, net, memory, pids, repFormat string
	cpus                                                          float64
	tty, detach, allowPtrace, report, reportFiles                 bool
	// Check: print what this host can enforce, and exit.
	Check bool
}

// minMemory is the least memory limit a sandbox starts under (Docker's
// minimum too): below it, brig's own start-up is killed.
const minMemory = 6 << 20

// Define defines the flags on fs.
func (v *Flags) Define(fs *flag.FlagSet) {
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
	fs.BoolVar(&v.Check, "check", false, "print what this host can enforce, and exit")
	fs.Var(&v.allowNet, "allow-net", "let the command reach HOST[:PORT] and nothing else: an IPv4 or IPv6 address or prefix ([v6]:PORT), a name, *.DOMAIN, localhost:PORT (repeatable)")
	fs.Var(&v.dnsUpstream, "dns-upstream", "with --allow-net: the resolver (IP[:PORT]) asked for allowed names (default: the host's /etc/resolv.conf; repeatable)")
	fs.BoolVar(&v.allowPtrace, "allow-ptrace", false, "let one sandboxed process trace another (ptrace, process_vm_readv/writev, pidfd_getfd: for debuggers); denied by default")
	fs.BoolVar(&v.report, "report", false, "when the command ends, list what the sandbox refused (seccomp, files (as root), DNS, network, limits) and the flag that would allow each, on stderr")
	fs.StringVar(&v.repFormat, "report-format", "text", "the report's format: text or json")
	fs.BoolVar(&v.reportFiles, "report-files", false, "with --report, without root: list the files too, from brig's seccomp listener looking at each path call (as root the eBPF recorder lists them anyway); a path-heavy command runs several times slower")
	fs.Var(&v.unprotect, "unprotect", "leave NAME writable inside --rw paths: one of the protected names (see --check), or all (repeatable)")
	fs.Var(&v.degraded, "allow-degraded", "run even if this layer can't be applied here: landlock, userns, cgroup, namespaces (none can be made, as inside a container: Landlock, seccomp, no_new_privs and rlimits only; see --check) (repeatable)")
	fs.Bool("i", true, "keep stdin open (always)")
}

// WithProfile puts the settings of a --profile FILE among args (before
// "--") first, so flags given on the command line add to them or
// override them; isFlag says whether a name is a flag.
func WithProfile(args []string, isFlag func(string) bool) ([]string, error) {
	for i := 0; i+1 < len(args) && args[i] != "--"; i++ {
		if args[i] == "--profile" || args[i] == "-profile" {
			pre, err := ProfileArgs(args[i+1], isFlag)
			if err != nil {
				return nil, err
			}
			return append(append(pre, args[:i]...), args[i+2:]...), nil
		}
	}
	return args, nil
}

// Options are what the flags ask for: the sandbox (Options), how to run
// it (RunOptions; the caller adds its hooks), command the command. A
// value that can't be is a cli.UsageError naming its flag.
func (v *Flags) Options(command []string) (*Options, RunOptions, error) {
	var ro RunOptions
	if err := Refuse(v.degraded); err != nil {
		return nil, ro, err
	}
	rdo, rw := v.ro, v.rw
	if err := cli.OneOf("home", v.home, "none", "ro", "rw"); err != nil {
		return nil, ro, err
	}
	if v.home != "none" {
		h, err := os.UserHomeDir()
		if err != nil {
			return nil, ro, cli.Usagef("--home %s: %v", v.home, err)
		}
		if v.home == "ro" {
			rdo = append(rdo[:len(rdo):len(rdo)], h)
		} else {
			rw = append(rw[:len(rw):len(rw)], h)
		}
	}
	o := &Options{Args: command, Env: v.env, Cwd: v.cwd, RO: rdo, RW: rw, Volumes: v.vols, Tmpfs: v.tmpfs,
		Hostname: v.hostname, CapAdd: v.capAdd, CapDrop: v.capDrop, Terminal: v.tty, CPUs: v.cpus, Pids: Unset, Memory: Unset,
		Unprotect: v.unprotect, AllowPtrace: v.allowPtrace, NetHost: v.net == "host"}
	if err := cli.OneOf("net", v.net, "none", "host"); err != nil {
		return nil, ro, err
	}
	for _, so := range v.secOpts {
		switch {
		case strings.HasPrefix(so, "seccomp="):
			o.Seccomp = strings.TrimPrefix(so, "seccomp=")
		case so == "no-new-privileges" || so == "no-new-privileges:true":
		default:
			return nil, ro, cli.Usagef("--security-opt %q: want seccomp=FILE|unconfined or no-new-privileges", so)
		}
	}
	if v.pids != "" {
		n, err := strconv.ParseInt(v.pids, 10, 64)
		if err != nil || n < 0 {
			return nil, ro, cli.Usagef("--pids-limit %q: want a number (0: no limit)", v.pids)
		}
		o.Pids = n
	}
	if v.memory == "0" {
		o.Memory = 0
	} else if v.memory != "" {
		n, err := cli.ParseBytes(v.memory)
		if err != nil {
			return nil, ro, cli.Usagef("--memory %q: %v", v.memory, err)
		}
		if n < minMemory {
			return nil, ro, cli.Usagef("--memory %s: below the least a sandbox starts under (6m); 0 means no limit", v.memory)
		}
		o.Memory = n
	}
	if v.user != "" {
		uid, gid, err := cli.ParseUser(v.user)
		if err != nil {
			return nil, ro, cli.Usagef("-u: %v", err)
		}
		o.User = &specs.User{UID: uid, GID: gid}
	}
	ro = RunOptions{Name: v.name, Detach: v.detach, AllowNet: v.allowNet, DNSUpstream: v.dnsUpstream, Degraded: v.degraded}
	if v.report {
		if err := cli.OneOf("report-format", v.repFormat, "text", "json"); err != nil {
			return nil, ro, err
		}
		ro.Report, ro.ReportTo, ro.ReportFiles = v.repFormat, os.Stderr, v.reportFiles
	} else if v.reportFiles {
		return nil, ro, cli.Usagef("--report-files: only with --report")
	}
	return o, ro, nil
}
