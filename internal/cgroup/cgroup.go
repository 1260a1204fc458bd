// Package cgroup is brig's one interface to cgroups on v1, v2 and hybrid
// hosts. The controllers' work is done by opencontainers/cgroups; this
// package translates the runtime-spec's linux.resources and cgroupsPath,
// and fills the gap that library leaves on hybrid hosts (hugetlb on the v2
// mount while the other controllers are v1).
package cgroup

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"brig/internal/cgroup/layout"
	"brig/internal/spec"

	"github.com/opencontainers/cgroups"
	_ "github.com/opencontainers/cgroups/devices" // device controller: v1 lists and the v2 eBPF filter
	devcfg "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/cgroups/manager"
	"github.com/opencontainers/cgroups/systemd"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Mode names the host's cgroup layout.
func Mode() string {
	switch {
	case cgroups.IsCgroup2UnifiedMode():
		return "v2"
	case cgroups.IsCgroup2HybridMode():
		return "hybrid"
	default:
		return "v1"
	}
}

// Usable says whether this process can make cgroups for its containers:
// as root, yes; otherwise only on a unified (v2) host where the cgroup it
// runs in was delegated to it (systemd's user@.service does). A probe for
// choices made before a container is created; the create itself is the
// final word.
func Usable() bool {
	if os.Geteuid() == 0 {
		return true
	}
	if Mode() != "v2" {
		return false
	}
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return unix.Access(filepath.Join("/sys/fs/cgroup", p), unix.W_OK) == nil
		}
	}
	return false
}

// Cgroup is a container's cgroup: what the lifecycle does with it, over
// the library's manager (which stays behind this type).
type Cgroup struct {
	m      cgroups.Manager
	config *cgroups.Cgroup
}

// Options choose the driver.
type Options struct {
	Systemd  bool
	Rootless bool
	// CpusetIfLimited: in cgroup v1, join the cpuset hierarchy only
	// when the resources set cpus or mems (brig run's sandbox). Making
	// the first cpuset cgroup below the root turns on the kernel's
	// cpuset static keys and removing the last turns them off: about 4
	// ms of a run on a host with no other cpuset cgroup. OCI containers
	// join every hierarchy, as with runc.
	CpusetIfLimited bool
}

// New returns the cgroup for a container. cgroupsPath is the spec's
// linux.cgroupsPath (absolute, relative to brig's own cgroup, or for the
// systemd driver "slice:prefix:name"); empty means a default of brig/<id>
// is used. paths, when known from the state file, skip path discovery.
func New(id, cgroupsPath string, res *specs.LinuxResources, o Options, paths map[string]string) (*Cgroup, error) {
	r, err := Resources(res)
	if err != nil {
		return nil, err
	}
	if err := checkBlkioWeight(r); err != nil {
		return nil, err
	}
	cfg := &cgroups.Cgroup{Resources: r, Systemd: o.Systemd, Rootless: o.Rootless}
	if o.Systemd {
		if !systemd.IsRunningSystemd() {
			return nil, errors.New("--systemd-cgroup: systemd is not running on this host; drop the flag to use the cgroupfs driver")
		}
		if cgroupsPath == "" {
			cgroupsPath = "system.slice:brig:" + id
		}
		parts := strings.Split(cgroupsPath, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("linux.cgroupsPath %q: the systemd driver wants slice:prefix:name", cgroupsPath)
		}
		cfg.Parent, cfg.ScopePrefix, cfg.Name = parts[0], parts[1], parts[2]
	} else {
		if cgroupsPath == "" {
			cgroupsPath = filepath.Join("/brig", id)
		}
		if strings.Contains(cgroupsPath, "..") {
			return nil, fmt.Errorf("linux.cgroupsPath %q: must not contain a .. element", cgroupsPath)
		}
		cfg.Path = cgroupsPath
	}
	if Mode() != "v2" && len(r.Unified) > 0 {
		return nil, fmt.Errorf("linux.resources.unified: needs cgroup v2 (this host is %s)", Mode())
	}
	m, err := manager.NewWithPaths(cfg, paths)
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	if o.CpusetIfLimited && paths == nil && !o.Systemd && Mode() != "v2" && r.CpusetCpus == "" && r.CpusetMems == "" {
		if ps := m.GetPaths(); ps["cpuset"] != "" && !comounted(ps, "cpuset") {
			delete(ps, "cpuset")
			if m, err = manager.NewWithPaths(cfg, ps); err != nil {
				return nil, fmt.Errorf("cgroup: %w", err)
			}
		}
	}
	return &Cgroup{m: m, config: cfg}, nil
}

// comounted says whether another controller shares the hierarchy (so
// the directory) of controller c.
func comounted(paths map[string]string, c string) bool {
	for k, p := range paths {
		if k != c && p == paths[c] {
			return true
		}
	}
	return false
}

// Apply creates the cgroup and puts pid in it.
func (c *Cgroup) Apply(pid int) error {
	if err := c.m.Apply(pid); err != nil {
		return fmt.Errorf("cgroup: join %d: %w", pid, err)
	}
	return nil
}

// Create makes the cgroup (in every hierarchy it has: all, but cpuset
// with CpusetIfLimited; cpuset's parents filled in) without putting a
// process in it.
func (c *Cgroup) Create() error {
	if r := c.config.Resources; r != nil && r.CpuRtRuntime > 0 {
		// Before the cgroup exists: the manager writes the budget as it
		// makes it.
		if err := c.rtBudget(r.CpuRtRuntime); err != nil {
			return err
		}
	}
	if err := c.m.Apply(-1); err != nil {
		return fmt.Errorf("cgroup: create: %w", err)
	}
	return nil
}

// SelfJoin says how a new process can enter this cgroup as it starts,
// with nobody moving it: born into the v2 cgroup (clone3 with
// CLONE_INTO_CGROUP on v2Dir), and, while it is still single-threaded,
// moving itself into each v1 hierarchy by writing "0" to v1Dirs' tasks
// files. Neither waits on the kernel: any other move takes the global
// cgroup_threadgroup_rwsem for writing, whose first writer after a quiet
// spell waits for an RCU grace period (8-16 ms on a busy host); a thread
// moving only itself, and a child born in place, don't take it. ok is
// false for the systemd driver, where systemd places the process.
func (c *Cgroup) SelfJoin() (v1Dirs []string, v2Dir string, ok bool) {
	if c.config.Systemd {
		return nil, "", false
	}
	v1Dirs, v2Dir = JoinDirs(c.m.GetPaths())
	return v1Dirs, v2Dir, true
}

// rtBudget gives the cgroups between the v1 cpu root and the container's
// the real-time runtime it asks for, where they have less: a child can't
// get more than its parent, and brig's own parent (brig/, made with
// none) would otherwise refuse every real-time container, which runc and
// crun, placing containers under the root, don't.
func (c *Cgroup) rtBudget(runtime int64) error {
	dir := c.m.Path("cpu")
	rel := filepath.Clean("/" + c.config.Path)
	if dir == "" || Mode() == "v2" || c.config.Systemd || !strings.HasSuffix(dir, rel) {
		return nil
	}
	root := strings.TrimSuffix(dir, rel)
	if _, err := os.Stat(filepath.Join(root, "cpu.rt_runtime_us")); err != nil {
		return nil // no real-time group scheduling here
	}
	parts := strings.Split(strings.Trim(rel, "/"), "/")
	for i := 1; i < len(parts); i++ { // the ancestors, top down
		anc := filepath.Join(append([]string{root}, parts[:i]...)...)
		if err := os.Mkdir(anc, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("cgroup %s: %w", anc, err)
		}
		p := filepath.Join(anc, "cpu.rt_runtime_us")
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("cgroup %s: %w", anc, err)
		}
		if have, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); have >= runtime {
			continue
		}
		if err := os.WriteFile(p, []byte(strconv.FormatInt(runtime, 10)), 0); err != nil {
			return fmt.Errorf("linux.resources.cpu.realtimeRuntime %d: the parent cgroup %s can't take it: %w", runtime, anc, err)
		}
	}
	return nil
}

// RemoveDefaultParents removes what the default cgroupsPath (brig/<id>)
// made for id, in every hierarchy, where it is empty: the container's
// directory and brig/ itself. For a create that failed part way, when the
// manager may not know every path it made.
func RemoveDefaultParents(id string) {
	hs, err := layout.Hierarchies()
	if err != nil {
		return
	}
	for _, h := range hs {
		os.Remove(filepath.Join(h.Mountpoint, "brig", id))
		os.Remove(filepath.Join(h.Mountpoint, "brig"))
	}
}

// JoinDirs splits an existing cgroup's paths (by controller, "" for v2)
// into the v1 directories and the v2 one a process joins as SelfJoin
// says; that works whichever driver made the cgroup (brig exec into a
// container systemd placed).
func JoinDirs(paths map[string]string) (v1Dirs []string, v2Dir string) {
	seen := map[string]bool{}
	for key, dir := range paths {
		switch {
		case dir == "" || seen[dir]:
		case key == "":
			v2Dir = dir
		default:
			v1Dirs = append(v1Dirs, dir)
		}
		seen[dir] = true
	}
	slices.Sort(v1Dirs)
	return v1Dirs, v2Dir
}

// KillAll SIGKILLs every process in the cgroup through cgroup.kill (cgroup
// v2, kernel 5.14+), which reaches processes forked while it runs. It
// reports false where there is no cgroup.kill, and the caller signals the
// processes one by one.
func (c *Cgroup) KillAll() (bool, error) {
	if Mode() != "v2" {
		return false, nil
	}
	dir := c.m.Path("")
	if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err != nil {
		return false, nil
	}
	if err := cgroups.WriteFile(dir, "cgroup.kill", "1"); err != nil {
		return true, fmt.Errorf("cgroup.kill: %w", err)
	}
	return true, nil
}

// Limit writes the resources given to New.
func (c *Cgroup) Limit() error { return c.set(c.config.Resources) }

// Update writes new resources (brig update); device rules are kept, as
// runc keeps them.
func (c *Cgroup) Update(res *specs.LinuxResources) error {
	r, err := Resources(res)
	if err != nil {
		return err
	}
	r.SkipDevices = true
	if (r.CpusetCpus != "" || r.CpusetMems != "") && Mode() != "v2" && !c.config.Systemd && c.m.Path("cpuset") == "" {
		// brig run's sandbox joins no cpuset cgroup (Options.CpusetIfLimited);
		// the manager's own error wouldn't say why.
		return errors.New("cpuset cpus/mems: this container has no cpuset cgroup (brig run's sandbox joins none unless it sets a cpuset limit)")
	}
	return c.set(r)
}

// Destroy removes the cgroup (it must be empty).
func (c *Cgroup) Destroy() error { return c.m.Destroy() }

// Paths are the cgroup's directories, by controller ("" for v2): a copy
// (the manager empties its own when the cgroup is destroyed).
func (c *Cgroup) Paths() map[string]string { return maps.Clone(c.m.GetPaths()) }

// Pids lists the processes in the cgroup, its descendants included.
func (c *Cgroup) Pids() ([]int, error) { return c.m.GetAllPids() }

// Frozen says whether the cgroup is frozen.
func (c *Cgroup) Frozen() bool {
	fs, err := c.m.GetFreezerState()
	return err == nil && fs == cgroups.Frozen
}

// SetFrozen freezes or thaws the cgroup.
func (c *Cgroup) SetFrozen(frozen bool) error {
	fs := cgroups.Thawed
	if frozen {
		fs = cgroups.Frozen
	}
	return c.m.Freeze(fs)
}

// AllowDevices adds the device rules every container gets
// (DefaultAllowedDevices) and those of its own devices.
func (c *Cgroup) AllowDevices(own []specs.LinuxDevice) {
	r := c.config.Resources
	if r == nil {
		return
	}
	r.Devices = append(r.Devices, DefaultAllowedDevices...)
	for _, d := range own {
		r.Devices = append(r.Devices, AllowDevice(d))
	}
}

func (c *Cgroup) set(r *cgroups.Resources) error {
	if r.CpuRtRuntime > 0 {
		if err := c.rtBudget(r.CpuRtRuntime); err != nil {
			return err
		}
	}
	hybridHugetlb := Mode() == "hybrid" && len(r.HugetlbLimit) > 0 && !v1Hugetlb()
	devDir := ""
	if Mode() != "v2" && !r.SkipDevices && !c.config.Systemd && !c.config.Rootless {
		devDir = c.m.Path("devices")
	}
	mr := r
	if hybridHugetlb || devDir != "" {
		cp := *r
		if hybridHugetlb {
			// The v1 manager has no hugetlb hierarchy to write to here.
			cp.HugetlbLimit = nil
		}
		if devDir != "" {
			cp.SkipDevices = true // written below, in order
		}
		mr = &cp
	}
	if err := c.m.Set(mr); err != nil {
		return fmt.Errorf("cgroup: set resources: %w", err)
	}
	if devDir != "" {
		if err := writeV1Devices(devDir, r.Devices); err != nil {
			return err
		}
	}
	if hybridHugetlb {
		if err := c.setHybridHugetlb(r.HugetlbLimit); err != nil {
			return err
		}
	}
	return nil
}

// writeV1Devices applies device rules on cgroup v1 in the order listed,
// as the runtime-spec asks: everything denied, then each rule in turn
// (what crun does). The library's v1 path writes the fewest rules that
// turn the current list into the wanted one, which leaves devices.list in
// an order of its own (runtime-tools' linux_cgroups_devices found the
// default mknod rule first).
func writeV1Devices(dir string, rules []*devcfg.Rule) error {
	if err := os.WriteFile(filepath.Join(dir, "devices.deny"), []byte("a"), 0); err != nil {
		return fmt.Errorf("cgroup: devices.deny a: %w", err)
	}
	for _, r := range rules {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		if err := os.WriteFile(filepath.Join(dir, file), []byte(r.CgroupString()), 0); err != nil {
			return fmt.Errorf("linux.resources.devices: %s %q: %w", file, r.CgroupString(), err)
		}
	}
	return nil
}

// setHybridHugetlb writes hugetlb limits through the v2 mount when the host
// has hugetlb only there: opencontainers/cgroups' v1 manager skips it.
func (c *Cgroup) setHybridHugetlb(limits []*cgroups.HugepageLimit) error {
	path := c.m.Path("")
	if path == "" {
		return errors.New("cgroup: hugepageLimits: no v2 cgroup for hugetlb on this hybrid host")
	}
	if err := enableController(path, "hugetlb"); err != nil {
		return err
	}
	for _, l := range limits {
		file := filepath.Join(path, "hugetlb."+l.Pagesize+".max")
		if err := os.WriteFile(file, []byte(strconv.FormatUint(l.Limit, 10)), 0); err != nil {
			return fmt.Errorf("linux.resources.hugepageLimits %s: %w", l.Pagesize, err)
		}
	}
	return nil
}

// checkBlkioWeight refuses a block I/O weight this kernel has no file for:
// weights belong to an I/O scheduler (BFQ, formerly CFQ), and a kernel
// without one has neither blkio.weight nor blkio.bfq.weight (io.weight or
// io.bfq.weight on v2). The library would fail later with a bare ENOENT.
func checkBlkioWeight(r *cgroups.Resources) error {
	if r == nil || (r.BlkioWeight == 0 && len(r.BlkioWeightDevice) == 0) {
		return nil
	}
	// On v2 the root cgroup has no io.weight to look at; the check is v1's.
	dir := "/sys/fs/cgroup/blkio"
	if _, err := os.Stat(dir); err != nil || cgroups.IsCgroup2UnifiedMode() {
		return nil
	}
	files := []string{"blkio.weight", "blkio.bfq.weight"}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return nil
		}
	}
	return errors.New("linux.resources.blockIO.weight: this kernel has no block I/O weights (neither blkio.weight nor blkio.bfq.weight: no BFQ or CFQ scheduler)")
}

func v1Hugetlb() bool {
	_, err := os.Stat("/sys/fs/cgroup/hugetlb/cgroup.procs")
	return err == nil
}

// enableController turns a v2 controller on in every ancestor's
// cgroup.subtree_control, from the mount root down to path's parent.
func enableController(path, controller string) error {
	root := "/sys/fs/cgroup/unified"
	if cgroups.IsCgroup2UnifiedMode() {
		root = "/sys/fs/cgroup"
	}
	rel, err := filepath.Rel(root, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("cgroup %s is not under %s", path, root)
	}
	cur := root
	for _, part := range strings.Split(rel, "/") {
		if err := os.WriteFile(filepath.Join(cur, "cgroup.subtree_control"), []byte("+"+controller), 0); err != nil {
			return fmt.Errorf("enable %s in %s: %w", controller, cur, err)
		}
		cur = filepath.Join(cur, part)
	}
	return nil
}

// Resources translates linux.resources for opencontainers/cgroups.
func Resources(r *specs.LinuxResources) (*cgroups.Resources, error) {
	out := &cgroups.Resources{}
	if r == nil {
		return out, nil
	}
	for i, d := range r.Devices {
		rule, err := deviceRule(d)
		if err != nil {
			return nil, fmt.Errorf("linux.resources.devices[%d]: %w", i, err)
		}
		out.Devices = append(out.Devices, rule)
	}
	if m := r.Memory; m != nil {
		out.Memory = deref(m.Limit)
		out.MemoryReservation = deref(m.Reservation)
		out.MemorySwap = deref(m.Swap)
		out.MemorySwappiness = m.Swappiness
		if m.DisableOOMKiller != nil {
			out.OomKillDisable = *m.DisableOOMKiller
		}
		out.MemoryCheckBeforeUpdate = m.CheckBeforeUpdate != nil && *m.CheckBeforeUpdate
	}
	if c := r.CPU; c != nil {
		out.CpuShares = derefU(c.Shares)
		out.CpuQuota = deref(c.Quota)
		out.CpuBurst = c.Burst
		out.CpuPeriod = derefU(c.Period)
		out.CpuRtRuntime = deref(c.RealtimeRuntime)
		out.CpuRtPeriod = derefU(c.RealtimePeriod)
		out.CpusetCpus = c.Cpus
		out.CpusetMems = c.Mems
		out.CPUIdle = c.Idle
		if out.CpuShares != 0 {
			out.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(out.CpuShares)
		}
	}
	if p := r.Pids; p != nil {
		lim := int64(0)
		if p.Limit != nil {
			lim = *p.Limit
		}
		if lim <= 0 {
			lim = -1
		}
		out.PidsLimit = &lim
	}
	if b := r.BlockIO; b != nil {
		out.BlkioWeight = derefU16(b.Weight)
		out.BlkioLeafWeight = derefU16(b.LeafWeight)
		for _, w := range b.WeightDevice {
			out.BlkioWeightDevice = append(out.BlkioWeightDevice, cgroups.NewWeightDevice(w.Major, w.Minor, derefU16(w.Weight), derefU16(w.LeafWeight)))
		}
		thr := func(list []specs.LinuxThrottleDevice) []*cgroups.ThrottleDevice {
			var o []*cgroups.ThrottleDevice
			for _, t := range list {
				o = append(o, cgroups.NewThrottleDevice(t.Major, t.Minor, t.Rate))
			}
			return o
		}
		out.BlkioThrottleReadBpsDevice = thr(b.ThrottleReadBpsDevice)
		out.BlkioThrottleWriteBpsDevice = thr(b.ThrottleWriteBpsDevice)
		out.BlkioThrottleReadIOPSDevice = thr(b.ThrottleReadIOPSDevice)
		out.BlkioThrottleWriteIOPSDevice = thr(b.ThrottleWriteIOPSDevice)
	}
	for _, h := range r.HugepageLimits {
		out.HugetlbLimit = append(out.HugetlbLimit, &cgroups.HugepageLimit{Pagesize: h.Pagesize, Limit: h.Limit})
	}
	if n := r.Network; n != nil {
		if n.ClassID != nil {
			out.NetClsClassid = *n.ClassID
		}
		for _, p := range n.Priorities {
			out.NetPrioIfpriomap = append(out.NetPrioIfpriomap, &cgroups.IfPrioMap{Interface: p.Name, Priority: int64(p.Priority)})
		}
	}
	if len(r.Rdma) > 0 {
		out.Rdma = map[string]cgroups.LinuxRdma{}
		for k, v := range r.Rdma {
			out.Rdma[k] = cgroups.LinuxRdma{HcaHandles: v.HcaHandles, HcaObjects: v.HcaObjects}
		}
	}
	if len(r.Unified) > 0 {
		out.Unified = r.Unified
	}
	return out, nil
}

func deviceRule(d specs.LinuxDeviceCgroup) (*devcfg.Rule, error) {
	rule := &devcfg.Rule{Allow: d.Allow, Major: devcfg.Wildcard, Minor: devcfg.Wildcard, Permissions: devcfg.Permissions(d.Access)}
	switch d.Type {
	case "", "a":
		rule.Type = devcfg.WildcardDevice
	case "c":
		rule.Type = devcfg.CharDevice
	case "b":
		rule.Type = devcfg.BlockDevice
	default:
		return nil, fmt.Errorf("unknown device type %q", d.Type)
	}
	if d.Major != nil {
		rule.Major = *d.Major
	}
	if d.Minor != nil {
		rule.Minor = *d.Minor
	}
	if rule.Permissions == "" {
		rule.Permissions = "rwm"
	}
	return rule, nil
}

// DefaultAllowedDevices are the device rules every container gets after its
// own (as runc): mknod of any device, the default devices (spec's list),
// and the terminals: /dev/console, /dev/pts/*, /dev/ptmx.
var DefaultAllowedDevices = defaultAllowedDevices()

func defaultAllowedDevices() []*devcfg.Rule {
	rules := []*devcfg.Rule{
		{Type: devcfg.CharDevice, Major: devcfg.Wildcard, Minor: devcfg.Wildcard, Permissions: "m", Allow: true},
		{Type: devcfg.BlockDevice, Major: devcfg.Wildcard, Minor: devcfg.Wildcard, Permissions: "m", Allow: true},
	}
	for _, d := range spec.DefaultDevices {
		rules = append(rules, AllowDevice(d))
	}
	return append(rules,
		&devcfg.Rule{Type: devcfg.CharDevice, Major: 5, Minor: 1, Permissions: "rwm", Allow: true},                 // console
		&devcfg.Rule{Type: devcfg.CharDevice, Major: 136, Minor: devcfg.Wildcard, Permissions: "rwm", Allow: true}, // pts
		&devcfg.Rule{Type: devcfg.CharDevice, Major: 5, Minor: 2, Permissions: "rwm", Allow: true},                 // ptmx
	)
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func derefU(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

func derefU16(p *uint16) uint16 {
	if p == nil {
		return 0
	}
	return *p
}

// AllowDevice is the cgroup rule that lets the container use a device it
// was given in linux.devices.
func AllowDevice(d specs.LinuxDevice) *devcfg.Rule {
	t := devcfg.CharDevice
	if d.Type == "b" {
		t = devcfg.BlockDevice
	}
	return &devcfg.Rule{Type: t, Major: d.Major, Minor: d.Minor, Permissions: "rwm", Allow: true}
}
