package protocol

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

// fakeConn plays the init: it sends msgs in turn and records the replies.
type fakeConn struct {
	msgs    []Message
	replies []Reply
}

func (c *fakeConn) Recv(v any) error {
	if len(c.msgs) == 0 {
		return io.EOF
	}
	data, _ := json.Marshal(c.msgs[0])
	c.msgs = c.msgs[1:]
	return json.Unmarshal(data, v)
}

func (c *fakeConn) Send(v any) error {
	r, ok := v.(Reply)
	if !ok {
		return errors.New("not a reply")
	}
	c.replies = append(c.replies, r)
	return nil
}

func TestServe(t *testing.T) {
	hooksErr := errors.New("createRuntime: exit 3")
	handlers := map[Kind]Handler{
		KindCgroup: func(Message) (Reply, error) {
			return Reply{CgroupPaths: map[string]string{"": "/sys/fs/cgroup/x"}}, nil
		},
		KindHooks: func(Message) (Reply, error) { return Reply{}, hooksErr },
	}
	for _, tc := range []struct {
		name    string
		msgs    []Message
		exec    bool
		err     string
		replies int
	}{
		{"ready after a request", []Message{{Type: KindCgroup}, {Type: KindReady}}, false, "", 1},
		{"init failed", []Message{{Type: KindCgroup}, {Type: KindError, Error: "process.cwd: nope"}}, false, "process.cwd: nope", 1},
		{"handler failed: told, and ends", []Message{{Type: KindHooks}, {Type: KindReady}}, false, "createRuntime", 1},
		{"unknown request", []Message{{Type: "weather"}}, false, "unexpected message", 0},
		{"no handler for a known kind", []Message{{Type: KindSeccomp}}, false, "unexpected message", 0},
		{"init gone before ready", []Message{{Type: KindCgroup}}, false, "exited before it was ready", 1},
		{"exec: the socket closes at execve", []Message{{Type: KindCgroup}}, true, "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeConn{msgs: tc.msgs}
			err := Serve(c, handlers, tc.exec)
			if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("got %v, want %q", err, tc.err)
			}
			if len(c.replies) != tc.replies {
				t.Fatalf("%d replies, want %d", len(c.replies), tc.replies)
			}
			if tc.name == "handler failed: told, and ends" && c.replies[0].Error != hooksErr.Error() {
				t.Errorf("the init was not told: %+v", c.replies[0])
			}
			if tc.name == "ready after a request" && c.replies[0].CgroupPaths[""] == "" {
				t.Errorf("cgroup reply lost its paths: %+v", c.replies[0])
			}
		})
	}
}
