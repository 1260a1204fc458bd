package lsm

import (
	"reflect"
	"strings"
	"testing"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// TestLandlockPlan: the rule set the C init gets is what go-landlock
// v0.11's best effort makes of Enforce's config on each ABI (its
// downgrade, compatibility check and workaround, read from its source):
// handled rights cut to the ABI's, rules' rights cut to the handled ones,
// a "refer" rule on an ABI without refer drops everything, read_dir on
// /proc/PID/task below ABI 8, and disableBestEffort refusing what the ABI
// lacks.
func TestLandlockPlan(t *testing.T) {
	const rx = ll.AccessFSExecute | ll.AccessFSReadFile | ll.AccessFSReadDir
	parse := func(js string) *Landlock {
		l, err := ParseLandlock(map[string]string{LandlockAnnotation: js})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	readBin := `{"ruleset":{"handledAccessFS":["execute","read_file","read_dir","write_file","truncate"],"handledAccessNetwork":["connect_tcp"]},
		"rules":{"pathBeneath":[{"allowedAccess":["execute","read_file","read_dir","truncate"],"paths":["/bin","/usr"]}],
		"netPort":[{"allowedAccess":["connect_tcp"],"ports":[443]}]}}`
	for _, tc := range []struct {
		name string
		js   string
		abi  int
		want *LandlockPlan
		err  string
	}{
		{"no Landlock: nothing", readBin, 0, &LandlockPlan{None: true}, ""},
		{"ABI 1: no truncate, no network", readBin, 1, &LandlockPlan{
			HandledFS: rx | ll.AccessFSWriteFile, ProcTaskReadDir: true,
			Paths: []LandlockPath{{rx, "/bin"}, {rx, "/usr"}}}, ""},
		{"ABI 4: truncate and network", readBin, 4, &LandlockPlan{
			HandledFS: rx | ll.AccessFSWriteFile | ll.AccessFSTruncate, HandledNet: ll.AccessNetConnectTCP, ProcTaskReadDir: true,
			Paths: []LandlockPath{{rx | ll.AccessFSTruncate, "/bin"}, {rx | ll.AccessFSTruncate, "/usr"}},
			Ports: []LandlockPort{{ll.AccessNetConnectTCP, 443}}}, ""},
		{"ABI 8: no /proc/PID/task rule", readBin, 8, &LandlockPlan{
			HandledFS: rx | ll.AccessFSWriteFile | ll.AccessFSTruncate, HandledNet: ll.AccessNetConnectTCP,
			Paths: []LandlockPath{{rx | ll.AccessFSTruncate, "/bin"}, {rx | ll.AccessFSTruncate, "/usr"}},
			Ports: []LandlockPort{{ll.AccessNetConnectTCP, 443}}}, ""},
		{"refer on ABI 1: nothing at all", `{"rules":{"pathBeneath":[{"allowedAccess":["refer","read_file"],"paths":["/"]}]}}`, 1,
			&LandlockPlan{None: true}, ""},
		{"a rule outside the handled rights", `{"ruleset":{"handledAccessFS":["read_file"]},"rules":{"pathBeneath":[{"allowedAccess":["write_file"],"paths":["/"]}]}}`, 7,
			nil, "incompatible rule"},
		{"disableBestEffort on an ABI without truncate", `{"ruleset":{"handledAccessFS":["truncate"]},"disableBestEffort":true}`, 2,
			nil, "missing kernel Landlock support"},
		{"disableBestEffort without Landlock", `{"disableBestEffort":true}`, 0, nil, "no Landlock"},
		{"a rule left with no rights is not added", `{"ruleset":{"handledAccessFS":["read_file","truncate"]},"rules":{"pathBeneath":[{"allowedAccess":["truncate"],"paths":["/t"]},{"allowedAccess":["read_file"],"paths":["/r"]}]}}`, 2,
			&LandlockPlan{HandledFS: ll.AccessFSReadFile, Paths: []LandlockPath{{ll.AccessFSReadFile, "/r"}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(tc.js).Plan(tc.abi)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Plan: %+v, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Plan(%d) =\n%+v\nwant\n%+v", tc.abi, got, tc.want)
			}
		})
	}
}
