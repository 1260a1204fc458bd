package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	var r Report
	var b bytes.Buffer
	r.Write(&b, "text")
	if !strings.Contains(b.String(), "refused nothing") {
		t.Errorf("empty report: %q", b.String())
	}
	b.Reset()
	r.Write(&b, "json")
	if strings.TrimSpace(b.String()) != "{\n  \"refused\": []\n}" {
		t.Errorf("empty JSON report: %q", b.String())
	}
	r.Add(Entry{Layer: "network", What: "192.0.2.1:443", Allow: "--allow-net 192.0.2.1:443"})
	r.Add(Entry{Layer: "seccomp", What: "mount (EPERM)", Count: 1, Allow: "--cap-add SYS_ADMIN"})
	r.Add(Entry{Layer: "seccomp", What: "ptrace (EPERM)", Count: 3, Processes: []string{"gdb"}, Allow: "--allow-ptrace"})
	b.Reset()
	r.Write(&b, "text")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "ptrace (EPERM) ×3 (gdb)") || !strings.Contains(lines[3], "--allow-net 192.0.2.1:443") {
		t.Errorf("text report:\n%s", b.String())
	}
	b.Reset()
	r.Write(&b, "json")
	var got struct{ Refused []Entry }
	if err := json.Unmarshal(b.Bytes(), &got); err != nil || len(got.Refused) != 3 || got.Refused[0].Allow != "--allow-ptrace" {
		t.Errorf("JSON report: %v %s", err, b.String())
	}
}

// A layer whose list misses refusals says so first, in text and JSON, and
// an empty list then doesn't claim nothing was refused.
func TestIncomplete(t *testing.T) {
	var r Report
	r.Incomplete("files", "12 failed calls were not kept")
	var b bytes.Buffer
	r.Write(&b, "text")
	if got := b.String(); !strings.HasPrefix(got, "brig: the files list is incomplete: 12 failed calls were not kept\n") ||
		!strings.Contains(got, "refused nothing that was recorded") {
		t.Errorf("text:\n%s", got)
	}
	b.Reset()
	r.Write(&b, "json")
	var got struct{ Incomplete []Gap }
	if err := json.Unmarshal(b.Bytes(), &got); err != nil || len(got.Incomplete) != 1 || got.Incomplete[0].Layer != "files" {
		t.Errorf("JSON: %v %s", err, b.String())
	}
}
