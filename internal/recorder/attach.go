package recorder

import (
	"fmt"
	"os"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// tracer is what Recorder and Refusals share: raw tracepoint programs
// attached to a cgroup's tasks, and the maps they use.
type tracer struct {
	maps  []*ebpf.Map
	progs []*ebpf.Program
	links []link.Link
}

// newMap makes a map the tracer frees on close.
func (t *tracer) newMap(spec ebpf.MapSpec) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&spec)
	if err != nil {
		return nil, fmt.Errorf("recorder: map: %w", err)
	}
	t.maps = append(t.maps, m)
	return m, nil
}

// cgroupMap is a one-entry cgroup array holding the cgroup v2 directory
// dir, for bpf_current_task_under_cgroup: its tasks and those of the
// cgroups below it (a container that makes cgroups of its own).
func (t *tracer) cgroupMap(dir string) (*ebpf.Map, error) {
	cg, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("recorder: cgroup %s: %w", dir, err)
	}
	defer cg.Close()
	m, err := t.newMap(ebpf.MapSpec{Name: "brig_cgroup", Type: ebpf.CGroupArray, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		return nil, err
	}
	if err := m.Put(uint32(0), uint32(cg.Fd())); err != nil {
		return nil, fmt.Errorf("recorder: cgroup %s: %w", dir, err)
	}
	return m, nil
}

// rawProgram is a program for one raw tracepoint.
type rawProgram struct {
	tracepoint string
	insns      asm.Instructions
}

// attach loads each program and attaches it, in order.
func (t *tracer) attach(ps ...rawProgram) error {
	for _, p := range ps {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "brig_" + p.tracepoint, Type: ebpf.RawTracepoint,
			Instructions: p.insns, License: "GPL"})
		if err != nil {
			return fmt.Errorf("recorder: load the %s program: %w", p.tracepoint, err)
		}
		t.progs = append(t.progs, prog)
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: p.tracepoint, Program: prog})
		if err != nil {
			return fmt.Errorf("recorder: attach to the %s raw tracepoint: %w", p.tracepoint, err)
		}
		t.links = append(t.links, l)
	}
	return nil
}

// close detaches the programs (every system call on the host is back on
// its fast path) and frees the maps. Each detach waits for an RCU grace
// period (tens of ms here): the links go at once, side by side.
func (t *tracer) close() {
	var wg sync.WaitGroup
	for _, l := range t.links {
		wg.Add(1)
		go func() { defer wg.Done(); l.Close() }()
	}
	wg.Wait()
	for _, p := range t.progs {
		p.Close()
	}
	for _, m := range t.maps {
		m.Close()
	}
	t.links, t.progs, t.maps = nil, nil, nil
}

// readRegister reads the task's register at off (a pt_regs offset; the
// registers' address is in r9) into r10-8. r0 is 0 on success.
func readRegister(off int32) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R1, asm.R10),
		asm.Add.Imm(asm.R1, -8),
		asm.Mov.Imm(asm.R2, 8),
		asm.Mov.Reg(asm.R3, asm.R9),
		asm.Add.Imm(asm.R3, off),
		asm.FnProbeReadKernel.Call(),
	}
}

// armedInCgroup goes on only for a task of the cgroup once armed (a task
// of it has exec'd); otherwise it jumps to "out".
func armedInCgroup(cgroup, armed int) asm.Instructions {
	return append(inCgroup(cgroup),
		asm.LoadMapValue(asm.R1, armed, 0),
		asm.LoadMem(asm.R1, asm.R1, 0, asm.Word),
		asm.JEq.Imm(asm.R1, 0, "out"),
	)
}

// inCgroup goes on only for a task of the cgroup (or of one below it);
// otherwise it jumps to "out".
func inCgroup(cgroup int) asm.Instructions {
	return asm.Instructions{
		asm.LoadMapPtr(asm.R1, cgroup),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnCurrentTaskUnderCgroup.Call(),
		asm.JNE.Imm(asm.R0, 1, "out"),
	}
}
