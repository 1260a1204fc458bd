package container

import (
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"brig/internal/inspect"
	"brig/internal/state"
)

// List is the state of every container in the store that can be read.
func List(store state.Store) ([]*OCIState, error) {
	ids, err := store.List()
	if err != nil {
		return nil, err
	}
	states := []*OCIState{}
	for _, id := range ids {
		if c, err := Load(store, id); err == nil {
			states = append(states, c.OCIState())
		}
	}
	return states, nil
}

// Events emits a stats event at once and every interval, and, as runc
// does, an "oom" event as soon as the OOM killer strikes in the
// container (its cgroup is polled every 100 ms); it ends when the
// container stops. An error of emit ends it with that error.
func Events(store state.Store, id string, interval time.Duration, emit func(*Event) error) error {
	ev, err := StatsEvent(store, id)
	if err != nil {
		return err
	}
	if err := emit(ev); err != nil {
		return err
	}
	ooms, _ := OOMKills(store, id)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-tick.C:
			ev, err := StatsEvent(store, id)
			if err != nil {
				return nil // stopped: the stream ends
			}
			if err := emit(ev); err != nil {
				return err
			}
		case <-poll.C:
			n, err := OOMKills(store, id)
			if err != nil {
				return nil
			}
			if n > ooms {
				if err := emit(&Event{Type: "oom", ID: id}); err != nil {
					return err
				}
				ooms = n
			}
		}
	}
}

// Ps runs ps(1) with psArgs (default -ef) and keeps its header and the
// lines of the container's processes.
func Ps(store state.Store, id string, psArgs []string) (string, error) {
	pids, err := Pids(store, id)
	if err != nil {
		return "", err
	}
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return "", fmt.Errorf("ps %s: %w", strings.Join(psArgs, " "), err)
	}
	return filterPs(string(out), pids)
}

// filterPs keeps ps output's header and the lines whose PID column is
// one of pids.
func filterPs(out string, pids []int) (string, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return "", fmt.Errorf("ps output has no PID column")
	}
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	var b strings.Builder
	b.WriteString(lines[0] + "\n")
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) > col {
			if p, err := strconv.Atoi(f[col]); err == nil && in[p] {
				b.WriteString(l + "\n")
			}
		}
	}
	return b.String(), nil
}

// ErrNothingToInspect: the container has no process.
var ErrNothingToInspect = errors.New("nothing to inspect")

// Inspect reports the container's effective isolation, layer by layer,
// as its process has it (inspect.Of), with its memory policy as
// configured (brig sets it before execve; it can't be read back).
func Inspect(store state.Store, id string) (*inspect.Report, error) {
	c, err := Load(store, id)
	if err != nil {
		return nil, err
	}
	st := c.OCIState()
	if st.Pid == 0 {
		return nil, fmt.Errorf("container %q is %s: %w", id, st.Status, ErrNothingToInspect)
	}
	r, err := inspect.Of(st.Pid, true)
	if mp := c.Spec.Linux.MemoryPolicy; err == nil && mp != nil {
		r.MemoryPolicy = fmt.Sprintf("%s nodes %s (as configured: brig sets it before execve)", mp.Mode, mp.Nodes)
	}
	return r, err
}
