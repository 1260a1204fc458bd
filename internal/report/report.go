// Package report is `brig run --report`: when the command ends, one list of
// what each layer of the sandbox refused, each with the flag that would
// allow it. The layers feed it what they saw: seccomp (the calls its
// listener answered with the profile's errno), the mounts and Landlock
// (paths not shown or kept read-only, seen by an eBPF recorder as root),
// the DNS responder (names
// not allowed), the egress fence (destinations it rejected), the cgroup
// (OOM kills, forks refused at pids.max).
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
)

// Entry is one thing refused.
type Entry struct {
	Layer     string   `json:"layer"` // seccomp, files, dns, network, limits
	What      string   `json:"what"`
	Count     int      `json:"count,omitempty"` // 0: not counted
	Processes []string `json:"processes,omitempty"`
	Allow     string   `json:"allow"` // the flag (or step) that would allow it
}

// Report collects entries from the layers.
type Report struct {
	mu         sync.Mutex
	entries    []Entry
	incomplete []Gap
}

// Gap says a layer's list is incomplete, and why: a reader must not take
// what is missing from it as allowed.
type Gap struct {
	Layer string `json:"layer"`
	Why   string `json:"why"`
}

// Incomplete records that layer's list misses refusals.
func (r *Report) Incomplete(layer, why string) {
	r.mu.Lock()
	r.incomplete = append(r.incomplete, Gap{layer, why})
	r.mu.Unlock()
}

// Gaps are the layers whose lists are incomplete.
func (r *Report) Gaps() []Gap {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Gap(nil), r.incomplete...)
}

// Add records an entry.
func (r *Report) Add(e Entry) {
	r.mu.Lock()
	r.entries = append(r.entries, e)
	r.mu.Unlock()
}

// Entries are the entries, by layer, then most frequent first.
func (r *Report) Entries() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]Entry(nil), r.entries...)
	order := map[string]int{"seccomp": 0, "landlock": 1, "files": 2, "dns": 3, "network": 4, "limits": 5}
	sort.SliceStable(out, func(i, j int) bool {
		if order[out[i].Layer] != order[out[j].Layer] {
			return order[out[i].Layer] < order[out[j].Layer]
		}
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].What < out[j].What
	})
	return out
}

// Write writes the report as text (one line per entry) or as JSON.
func (r *Report) Write(w io.Writer, format string) error {
	es, gaps := r.Entries(), r.Gaps()
	if format == "json" {
		if es == nil {
			es = []Entry{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Refused    []Entry `json:"refused"`
			Incomplete []Gap   `json:"incomplete,omitempty"`
		}{es, gaps})
	}
	for _, g := range gaps {
		if _, err := fmt.Fprintf(w, "brig: the %s list is incomplete: %s\n", g.Layer, g.Why); err != nil {
			return err
		}
	}
	if len(es) == 0 {
		what := "nothing"
		if len(gaps) > 0 {
			what = "nothing that was recorded"
		}
		_, err := fmt.Fprintln(w, "brig: the sandbox refused "+what)
		return err
	}
	fmt.Fprintln(w, "brig: what the sandbox refused:")
	for _, e := range es {
		what := e.What
		if e.Count > 0 {
			what += fmt.Sprintf(" ×%d", e.Count)
		}
		if len(e.Processes) > 0 {
			what += " (" + strings.Join(e.Processes, ", ") + ")"
		}
		if _, err := fmt.Fprintf(w, "  %-8s %-40s allow: %s\n", e.Layer, what, e.Allow); err != nil {
			return err
		}
	}
	return nil
}
