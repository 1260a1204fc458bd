// Package inspect reports the effective isolation of a process, layer by
// layer, from what the kernel shows in /proc: namespaces, capabilities,
// no_new_privs, seccomp, LSM labels, cgroup limits, masked paths, writable
// mounts — and the weak spots among them. It works on any process, from
// the host (brig inspect ID) or from inside a container (--self), whatever
// runtime made it.
package inspect

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	"github.com/moby/sys/capability"
	"golang.org/x/sys/unix"
)

// Report is the effective isolation of one process.
type Report struct {
	Pid          int                  `json:"pid"`
	Namespaces   map[string]Namespace `json:"namespaces"`
	UID          string               `json:"uid"`
	Capabilities map[string][]string  `json:"capabilities"`
	NoNewPrivs   bool                 `json:"noNewPrivs"`
	Seccomp      Seccomp              `json:"seccomp"`
	LSM          map[string]string    `json:"lsm,omitempty"`
	Cgroup       map[string]string    `json:"cgroupLimits,omitempty"`
	Masked       []string             `json:"maskedPaths"`
	Unmasked     []string             `json:"unmaskedPaths,omitempty"`
	Writable     []string             `json:"writableMounts"`
	// ReadOnlyIn are read-only mounts inside writable ones (brig run's
	// protected paths: .git/hooks, .bashrc, ...).
	ReadOnlyIn []string `json:"readOnlyInWritable,omitempty"`
	// MemoryPolicy is the NUMA memory policy: read with get_mempolicy
	// for --self; for a container, its config's (another task's policy
	// is not visible in /proc).
	MemoryPolicy string   `json:"memoryPolicy,omitempty"`
	WeakSpots    []string `json:"weakSpots"`
}

// Namespace is one namespace's inode and whether it is the host's.
type Namespace struct {
	Inode string `json:"inode"`
	// Host: "yes", "no", or "unknown" (when seen from inside, mnt and net
	// namespaces have no fixed inode to compare with).
	Host string `json:"host"`
}

// Seccomp is the process's seccomp state.
type Seccomp struct {
	Mode    string `json:"mode"` // disabled, strict, filter
	Filters int    `json:"filters"`
}

// The kernel gives its initial namespaces fixed inode numbers
// (include/linux/proc_ns.h); a process in one of them shares it with the
// host.
var initInodes = map[string]uint64{
	"ipc": 0xEFFFFFFF, "uts": 0xEFFFFFFE, "user": 0xEFFFFFFD, "pid": 0xEFFFFFFC,
	"cgroup": 0xEFFFFFFB, "time": 0xEFFFFFFA,
}

var nsNames = []string{"mnt", "pid", "net", "ipc", "uts", "user", "cgroup", "time"}

// Masked are the paths Docker and brig hide by default.
var Masked = []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/acpi", "/proc/scsi", "/sys/firmware"}

// Of inspects pid. When host is true the caller runs in the host's
// namespaces, so every namespace can be compared with its own.
func Of(pid int, host bool) (*Report, error) {
	proc := fmt.Sprintf("/proc/%d", pid)
	status, err := os.ReadFile(proc + "/status")
	if err != nil {
		return nil, fmt.Errorf("inspect %d: %w", pid, err)
	}
	field := func(name string) string {
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, name+":"); ok {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	r := &Report{Pid: pid, Namespaces: map[string]Namespace{}, Capabilities: map[string][]string{}, LSM: map[string]string{}, Cgroup: map[string]string{}}
	for _, ns := range nsNames {
		link, err := os.Readlink(proc + "/ns/" + ns)
		if err != nil {
			continue
		}
		n := Namespace{Inode: link, Host: "unknown"}
		var st unix.Stat_t
		if unix.Stat(proc+"/ns/"+ns, &st) == nil {
			if want, ok := initInodes[ns]; ok {
				n.Host = yesNo(st.Ino == want)
			}
		}
		if host {
			if own, err := os.Readlink("/proc/self/ns/" + ns); err == nil {
				n.Host = yesNo(own == link)
			}
		}
		r.Namespaces[ns] = n
	}
	r.UID = strings.Fields(field("Uid") + " ?")[0]
	for set, key := range map[string]string{"effective": "CapEff", "permitted": "CapPrm", "inheritable": "CapInh", "bounding": "CapBnd", "ambient": "CapAmb"} {
		r.Capabilities[set] = capNames(field(key))
	}
	r.NoNewPrivs = field("NoNewPrivs") == "1"
	switch field("Seccomp") {
	case "1":
		r.Seccomp.Mode = "strict"
	case "2":
		r.Seccomp.Mode = "filter"
	default:
		r.Seccomp.Mode = "disabled"
	}
	r.Seccomp.Filters, _ = strconv.Atoi(field("Seccomp_filters"))
	for _, attr := range []string{"attr/current", "attr/apparmor/current"} {
		if data, err := os.ReadFile(proc + "/" + attr); err == nil {
			if v := strings.TrimSpace(strings.TrimRight(string(data), "\x00")); v != "" {
				r.LSM[attr] = v
			}
		}
	}
	r.Cgroup = cgroupLimits(proc, host)
	root := proc + "/root"
	for _, p := range Masked {
		switch maskState(root + p) {
		case "masked":
			r.Masked = append(r.Masked, p)
		case "visible":
			r.Unmasked = append(r.Unmasked, p)
		}
	}
	r.Writable, r.ReadOnlyIn = writableMounts(proc)
	if pid == os.Getpid() {
		r.MemoryPolicy = ownMemoryPolicy()
	}
	r.WeakSpots = weakSpots(r)
	return r, nil
}

// memoryPolicyModes are the kernel's MPOL_* modes by number.
var memoryPolicyModes = []string{"MPOL_DEFAULT", "MPOL_PREFERRED", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_LOCAL", "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE"}

// ownMemoryPolicy is this thread's memory policy ("" where the kernel has
// no NUMA support).
func ownMemoryPolicy() string {
	var mode int32
	var mask [16]uint64
	if _, _, errno := unix.Syscall6(unix.SYS_GET_MEMPOLICY, uintptr(unsafe.Pointer(&mode)), uintptr(unsafe.Pointer(&mask[0])), 1024, 0, 0, 0); errno != 0 {
		return ""
	}
	name := fmt.Sprintf("mode %d", mode&0xff)
	if int(mode&0xff) < len(memoryPolicyModes) {
		name = memoryPolicyModes[mode&0xff]
	}
	var nodes []string
	for i := 0; i < 1024; i++ {
		if mask[i/64]&(1<<(i%64)) != 0 {
			nodes = append(nodes, strconv.Itoa(i))
		}
	}
	if len(nodes) > 0 {
		name += " nodes " + strings.Join(nodes, ",")
	}
	return name
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func capNames(hex string) []string {
	v, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		return nil
	}
	var out []string
	for _, c := range capability.ListKnown() {
		if v&(1<<uint(c)) != 0 {
			out = append(out, "CAP_"+strings.ToUpper(c.String()))
		}
	}
	return out
}

// maskState: "masked" (an empty directory or the null device), "visible"
// (real content), or "" (absent).
func maskState(p string) string {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return ""
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		if unix.Major(st.Rdev) == 1 && unix.Minor(st.Rdev) == 3 {
			return "masked"
		}
	case unix.S_IFDIR:
		if ents, err := os.ReadDir(p); err == nil && len(ents) == 0 {
			return "masked"
		}
	}
	return "visible"
}

// writableMounts lists the writable mount points, and the read-only ones
// that lie inside a writable mount other than /, /proc, /dev and /sys
// (whose read-only parts are the masks brig already reports).
func writableMounts(proc string) (rw, roIn []string) {
	data, err := os.ReadFile(proc + "/mountinfo")
	if err != nil {
		return nil, nil
	}
	var ro []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		if strings.HasPrefix(f[5], "rw") {
			rw = append(rw, f[4])
		} else {
			ro = append(ro, f[4])
		}
	}
	for _, m := range ro {
		for _, w := range rw {
			switch w {
			case "/", "/proc", "/dev", "/sys":
				continue
			}
			if strings.HasPrefix(m, w+"/") && !slices.Contains(roIn, m) {
				roIn = append(roIn, m)
			}
		}
	}
	sort.Strings(rw)
	sort.Strings(roIn)
	return rw, roIn
}

// cgroupLimits reads the process's memory, pids and cpu limits.
func cgroupLimits(proc string, host bool) map[string]string {
	out := map[string]string{}
	data, err := os.ReadFile(proc + "/cgroup")
	if err != nil {
		return out
	}
	base := "/sys/fs/cgroup"
	if !host {
		base = proc + "/root/sys/fs/cgroup"
	}
	read := func(p string) string {
		v, err := os.ReadFile(p)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(v))
	}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		path := f[2]
		if !host {
			path = "/" // a cgroup namespace shows the container's own cgroup at its root
		}
		for _, ctl := range strings.Split(f[1], ",") {
			switch ctl {
			case "memory":
				if v := read(filepath.Join(base, "memory", path, "memory.limit_in_bytes")); v != "" {
					out["memory"] = v
				}
			case "pids":
				if v := read(filepath.Join(base, "pids", path, "pids.max")); v != "" {
					out["pids"] = v
				}
			case "cpu":
				q, p := read(filepath.Join(base, "cpu", path, "cpu.cfs_quota_us")), read(filepath.Join(base, "cpu", path, "cpu.cfs_period_us"))
				if q != "" {
					out["cpu"] = q + " " + p
				}
			case "":
				if f[0] == "0" {
					for key, file := range map[string]string{"memory": "memory.max", "pids": "pids.max", "cpu": "cpu.max"} {
						if _, ok := out[key]; ok {
							continue
						}
						if v := read(filepath.Join(base, path, file)); v != "" {
							out[key] = v
						}
					}
				}
			}
		}
	}
	return out
}

func weakSpots(r *Report) []string {
	var out []string
	has := func(set, c string) bool {
		for _, x := range r.Capabilities[set] {
			if x == c {
				return true
			}
		}
		return false
	}
	if has("effective", "CAP_SYS_ADMIN") || has("bounding", "CAP_SYS_ADMIN") {
		out = append(out, "CAP_SYS_ADMIN present: close to root on the host")
	}
	for _, c := range []string{"CAP_SYS_PTRACE", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_NET_ADMIN", "CAP_DAC_READ_SEARCH", "CAP_BPF"} {
		if has("bounding", c) {
			out = append(out, c+" present")
		}
	}
	for _, ns := range []string{"net", "pid", "ipc", "uts", "mnt"} {
		if r.Namespaces[ns].Host == "yes" {
			out = append(out, "shares the host's "+ns+" namespace")
		}
	}
	if r.Namespaces["user"].Host == "yes" && r.UID == "0" {
		out = append(out, "root in the host's user namespace: root inside is root outside")
	}
	if r.Seccomp.Mode == "disabled" {
		out = append(out, "no seccomp filter")
	}
	if !r.NoNewPrivs {
		out = append(out, "no_new_privs is off: setuid binaries can raise privileges")
	}
	if len(r.LSM) == 0 || allUnconfined(r.LSM) {
		out = append(out, "no LSM label (AppArmor/SELinux)")
	}
	for _, w := range r.Writable {
		if w == "/sys" || strings.HasPrefix(w, "/sys/fs/cgroup") || w == "/proc/sys" || w == "/proc/sysrq-trigger" {
			out = append(out, "writable "+w)
		}
	}
	if len(r.Unmasked) > 0 {
		out = append(out, "not masked: "+strings.Join(r.Unmasked, ", "))
	}
	return out
}

func allUnconfined(m map[string]string) bool {
	for _, v := range m {
		if !strings.HasPrefix(v, "unconfined") {
			return false
		}
	}
	return true
}

// Text renders the report for people; colour when color is true.
func (r *Report) Text(color bool) string {
	var b strings.Builder
	c := func(code, s string) string {
		if !color {
			return s
		}
		return "\x1b[" + code + "m" + s + "\x1b[0m"
	}
	fmt.Fprintf(&b, "Process %d (uid %s)\n", r.Pid, r.UID)
	fmt.Fprintln(&b, "Namespaces:")
	for _, ns := range nsNames {
		n, ok := r.Namespaces[ns]
		if !ok {
			continue
		}
		state := map[string]string{"yes": c("31", "shared with the host"), "no": c("32", "private"), "unknown": "private or shared (can't tell from inside)"}[n.Host]
		fmt.Fprintf(&b, "  %-7s %s  %s\n", ns, state, n.Inode)
	}
	fmt.Fprintln(&b, "Capabilities:")
	for _, set := range []string{"effective", "permitted", "inheritable", "bounding", "ambient"} {
		v := strings.Join(r.Capabilities[set], " ")
		if v == "" {
			v = "none"
		}
		fmt.Fprintf(&b, "  %-11s %s\n", set, v)
	}
	fmt.Fprintf(&b, "no_new_privs: %v\nseccomp: %s (%d filters)\n", r.NoNewPrivs, r.Seccomp.Mode, r.Seccomp.Filters)
	if len(r.LSM) == 0 {
		fmt.Fprintln(&b, "LSM labels: none")
	}
	for k, v := range r.LSM {
		fmt.Fprintf(&b, "LSM %s: %s\n", k, v)
	}
	if len(r.Cgroup) == 0 {
		fmt.Fprintln(&b, "cgroup limits: none found")
	}
	for _, k := range []string{"memory", "cpu", "pids"} {
		if v, ok := r.Cgroup[k]; ok {
			fmt.Fprintf(&b, "cgroup %s: %s\n", k, v)
		}
	}
	if r.MemoryPolicy != "" {
		fmt.Fprintf(&b, "memory policy: %s\n", r.MemoryPolicy)
	}
	fmt.Fprintf(&b, "masked: %s\n", strings.Join(r.Masked, " "))
	fmt.Fprintf(&b, "writable mounts: %s\n", strings.Join(r.Writable, " "))
	if len(r.ReadOnlyIn) > 0 {
		fmt.Fprintf(&b, "read-only inside writable mounts: %s\n", strings.Join(r.ReadOnlyIn, " "))
	}
	if len(r.WeakSpots) == 0 {
		fmt.Fprintln(&b, c("32", "Verdict: no weak spots found"))
	} else {
		fmt.Fprintln(&b, c("33", "Weak spots:"))
		for _, w := range r.WeakSpots {
			fmt.Fprintln(&b, "  - "+w)
		}
	}
	return b.String()
}
