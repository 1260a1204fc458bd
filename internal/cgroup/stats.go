package cgroup

import (
	"fmt"

	"github.com/opencontainers/cgroups"
)

// Stats are the cgroup's usage figures, shaped as runc's events --stats
// prints them.
func (c *Cgroup) Stats() (map[string]any, error) {
	s, err := c.m.GetStats()
	if err != nil {
		return nil, fmt.Errorf("cgroup stats: %w", err)
	}
	mem := s.MemoryStats
	usage := func(d cgroups.MemoryData) map[string]uint64 {
		return map[string]uint64{"limit": d.Limit, "usage": d.Usage, "max": d.MaxUsage, "failcnt": d.Failcnt}
	}
	blk := func(es []cgroups.BlkioStatEntry) []map[string]any {
		out := []map[string]any{}
		for _, e := range es {
			out = append(out, map[string]any{"major": e.Major, "minor": e.Minor, "op": e.Op, "value": e.Value})
		}
		return out
	}
	return map[string]any{
		"cpu": map[string]any{
			"usage": map[string]any{
				"total": s.CpuStats.CpuUsage.TotalUsage, "percpu": s.CpuStats.CpuUsage.PercpuUsage,
				"kernel": s.CpuStats.CpuUsage.UsageInKernelmode, "user": s.CpuStats.CpuUsage.UsageInUsermode,
			},
			"throttling": map[string]uint64{
				"periods": s.CpuStats.ThrottlingData.Periods, "throttledPeriods": s.CpuStats.ThrottlingData.ThrottledPeriods,
				"throttledTime": s.CpuStats.ThrottlingData.ThrottledTime,
			},
		},
		"memory": map[string]any{
			"cache": mem.Cache, "usage": usage(mem.Usage), "swap": usage(mem.SwapUsage),
			"kernel": usage(mem.KernelUsage), "raw": mem.Stats,
		},
		"pids": map[string]uint64{"current": s.PidsStats.Current, "limit": s.PidsStats.Limit},
		"blkio": map[string]any{
			"ioServiceBytesRecursive": blk(s.BlkioStats.IoServiceBytesRecursive),
			"ioServicedRecursive":     blk(s.BlkioStats.IoServicedRecursive),
		},
		"hugetlb": s.HugetlbStats,
	}, nil
}
