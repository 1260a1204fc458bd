package cgroup

import (
	"testing"

	devcfg "github.com/opencontainers/cgroups/devices/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/cgroup/layout"
	"brig/internal/spec"
)

func TestResources(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	u16 := func(v uint16) *uint16 { return &v }
	major := int64(1)
	r, err := Resources(&specs.LinuxResources{
		Memory:         &specs.LinuxMemory{Limit: i64(100), Reservation: i64(50), Swap: i64(200)},
		CPU:            &specs.LinuxCPU{Shares: u64(1024), Quota: i64(5000), Period: u64(10000), Cpus: "0-1"},
		Pids:           &specs.LinuxPids{Limit: i64(0)},
		BlockIO:        &specs.LinuxBlockIO{Weight: u16(500), ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{Rate: 10}}},
		Devices:        []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Major: &major, Access: "r"}},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4096}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Memory != 100 || r.MemoryReservation != 50 || r.MemorySwap != 200 {
		t.Errorf("memory: %+v", r)
	}
	if r.CpuShares != 1024 || r.CpuWeight != 100 || r.CpuQuota != 5000 || r.CpuPeriod != 10000 || r.CpusetCpus != "0-1" {
		t.Errorf("cpu: shares %d weight %d quota %d period %d cpus %q", r.CpuShares, r.CpuWeight, r.CpuQuota, r.CpuPeriod, r.CpusetCpus)
	}
	if r.PidsLimit == nil || *r.PidsLimit != -1 {
		t.Errorf("pids limit 0 must mean unlimited (-1), got %v", r.PidsLimit)
	}
	if r.BlkioWeight != 500 || len(r.BlkioThrottleReadBpsDevice) != 1 {
		t.Errorf("blkio: %+v", r)
	}
	if len(r.Devices) != 2 || r.Devices[0].Type != devcfg.WildcardDevice || r.Devices[0].Allow ||
		r.Devices[1].Type != devcfg.CharDevice || r.Devices[1].Major != 1 || r.Devices[1].Minor != devcfg.Wildcard {
		t.Errorf("devices: %+v %+v", r.Devices[0], r.Devices[1])
	}
	if len(r.HugetlbLimit) != 1 || r.HugetlbLimit[0].Pagesize != "2MB" {
		t.Errorf("hugetlb: %v", r.HugetlbLimit)
	}
	if _, err := Resources(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "x"}}}); err == nil {
		t.Error("bad device type accepted")
	}
	if r, err := Resources(nil); err != nil || r == nil {
		t.Errorf("nil resources: %v %v", r, err)
	}
}

// TestDefaultDevicesAllowed: every device rootfs creates by default is
// allowed by the default device rules (one list, spec.DefaultDevices).
func TestDefaultDevicesAllowed(t *testing.T) {
	for _, d := range spec.DefaultDevices {
		found := false
		for _, r := range DefaultAllowedDevices {
			if r.Allow && r.Permissions == "rwm" && r.Major == d.Major && r.Minor == d.Minor && string(r.Type) == d.Type {
				found = true
			}
		}
		if !found {
			t.Errorf("%s (%d:%d) has no rwm rule", d.Path, d.Major, d.Minor)
		}
	}
}

// The layout read from the mount table agrees with the cgroup library's
// idea of the host's mode.
func TestLayoutMatchesMode(t *testing.T) {
	hs, err := layout.Hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	if (Mode() == "v2") != layout.OnlyV2(hs) {
		t.Errorf("Mode %s, hierarchies %+v", Mode(), hs)
	}
}

func TestComounted(t *testing.T) {
	ps := map[string]string{"cpu": "/sys/fs/cgroup/cpu,cpuacct/x", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/x", "cpuset": "/sys/fs/cgroup/cpuset/x"}
	if comounted(ps, "cpuset") || !comounted(ps, "cpu") {
		t.Errorf("comounted: cpuset %v, cpu %v", comounted(ps, "cpuset"), comounted(ps, "cpu"))
	}
	ps["cpuset"] = ps["cpu"]
	if !comounted(ps, "cpuset") {
		t.Error("cpuset mounted with cpu: not seen")
	}
}
