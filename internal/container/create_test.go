package container

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Whether a container goes on without a cgroup: a decision, tested
// without one.
func TestCgroupFailure(t *testing.T) {
	eperm := fmt.Errorf("mkdir /sys/fs/cgroup/x: %w", os.ErrPermission)
	other := errors.New("cgroup: no such controller")
	for _, tc := range []struct {
		name                       string
		err                        error
		rootless, limits, optional bool
		skip                       bool
		warn, fails                string
	}{
		{name: "made", err: nil, rootless: true},
		{name: "root's failure is an error", err: eperm, fails: "permission denied"},
		{name: "rootless, no limits asked: go on", err: eperm, rootless: true, skip: true, warn: "without limits"},
		{name: "rootless, limits asked", err: eperm, rootless: true, limits: true, fails: "linux.resources"},
		{name: "rootless, limits let go", err: eperm, rootless: true, limits: true, optional: true, skip: true, warn: "left out"},
		{name: "rootless, another failure", err: other, rootless: true, fails: "no such controller"},
		{name: "rootless, cgroups mounted read-only: go on", err: fmt.Errorf("mkdir /sys/fs/cgroup/cpuset/brig: %w", unix.EROFS), rootless: true, skip: true, warn: "without limits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			skip, warn, err := cgroupFailure(tc.err, tc.rootless, tc.limits, tc.optional)
			if skip != tc.skip || !strings.Contains(warn, tc.warn) || (tc.warn == "") != (warn == "") {
				t.Errorf("skip %v, warning %q", skip, warn)
			}
			if (tc.fails == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.fails)) {
				t.Errorf("error %v, want %q", err, tc.fails)
			}
		})
	}
}
