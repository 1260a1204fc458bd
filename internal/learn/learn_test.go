package learn

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/recorder"
	"brig/internal/seccomp"
)

func recording() *recorder.Recording {
	x := func(nr int) recorder.Call { return recorder.Call{Arch: recorder.ArchX86_64, Nr: nr} }
	return &recorder.Recording{
		Calls: map[recorder.Call]bool{
			x(unix.SYS_READ): true, x(unix.SYS_SOCKET): true, x(unix.SYS_CLONE): true, x(unix.SYS_IOCTL): true,
			x(unix.SYS_MPROTECT): true, x(unix.SYS_PERSONALITY): true,
		},
		Args: map[int]map[uint64]bool{
			unix.SYS_SOCKET:      {uint64(unix.AF_INET)<<32 | unix.SOCK_STREAM: true},
			unix.SYS_CLONE:       {0: true}, // threads and forks, no namespace
			unix.SYS_IOCTL:       {unix.TCGETS: true},
			unix.SYS_MPROTECT:    {0: true},
			unix.SYS_PERSONALITY: {0xffffffff: true},
		},
	}
}

// The profile compiles, and its verdicts are what was learned: the values
// seen pass, any other value of a call with argument rules and any call
// not seen are denied with EPERM.
func TestProfileVerdicts(t *testing.T) {
	set, err := FromRecording(recording())
	if err != nil {
		t.Fatal(err)
	}
	p := set.Profile(&Meta{})
	prog, _, err := seccomp.Compile(&p.LinuxSeccomp)
	if err != nil {
		t.Fatal(err)
	}
	const allow, eperm = unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	for _, tc := range []struct {
		name string
		nr   int32
		args [6]uint64
		want uint32
	}{
		{"read", unix.SYS_READ, [6]uint64{}, allow},
		{"write, one of the runtime's", unix.SYS_WRITE, [6]uint64{}, allow},
		{"execve, one of the runtime's", unix.SYS_EXECVE, [6]uint64{}, allow},
		{"mkdir, never made", unix.SYS_MKDIRAT, [6]uint64{}, eperm},
		{"socket inet stream", unix.SYS_SOCKET, [6]uint64{unix.AF_INET, unix.SOCK_STREAM | unix.SOCK_CLOEXEC}, allow},
		{"socket inet6 stream", unix.SYS_SOCKET, [6]uint64{unix.AF_INET6, unix.SOCK_STREAM}, eperm},
		{"socket inet dgram", unix.SYS_SOCKET, [6]uint64{unix.AF_INET, unix.SOCK_DGRAM}, eperm},
		{"socket netlink", unix.SYS_SOCKET, [6]uint64{unix.AF_NETLINK, unix.SOCK_RAW}, eperm},
		{"clone a thread", unix.SYS_CLONE, [6]uint64{unix.CLONE_VM | unix.CLONE_THREAD | unix.CLONE_SIGHAND}, allow},
		{"clone a user namespace", unix.SYS_CLONE, [6]uint64{unix.CLONE_NEWUSER}, eperm},
		{"ioctl TCGETS", unix.SYS_IOCTL, [6]uint64{1, unix.TCGETS}, allow},
		{"ioctl TIOCSTI", unix.SYS_IOCTL, [6]uint64{1, unix.TIOCSTI}, eperm},
		{"mprotect read-write", unix.SYS_MPROTECT, [6]uint64{0, 4096, unix.PROT_READ | unix.PROT_WRITE}, allow},
		{"mprotect executable", unix.SYS_MPROTECT, [6]uint64{0, 4096, unix.PROT_READ | unix.PROT_EXEC}, eperm},
		{"personality query", unix.SYS_PERSONALITY, [6]uint64{0xffffffff}, allow},
		{"personality READ_IMPLIES_EXEC", unix.SYS_PERSONALITY, [6]uint64{0x0400000}, eperm},
		{"prctl PR_SET_PDEATHSIG, the runtime's", unix.SYS_PRCTL, [6]uint64{unix.PR_SET_PDEATHSIG, 9}, allow},
		{"prctl PR_SET_DUMPABLE", unix.SYS_PRCTL, [6]uint64{unix.PR_SET_DUMPABLE, 1}, eperm},
	} {
		v, err := prog.Verdict(seccomp.AuditArchX86_64, tc.nr, tc.args)
		if err != nil {
			t.Fatal(err)
		}
		if v != tc.want {
			t.Errorf("%s: verdict %#x, want %#x", tc.name, v, tc.want)
		}
	}
	if !reflect.DeepEqual(p.Architectures, []specs.Arch{specs.ArchX86_64}) || p.DefaultAction != specs.ActErrno {
		t.Errorf("profile head: %v %v", p.Architectures, p.DefaultAction)
	}
}

// clone3 is answered ENOSYS (its flags can't be checked) and clone is
// then allowed for threads; a 32-bit call with argument rules is left out
// and reported; an x32 call's values are the x86-64 number's.
func TestProfileABIsAndClone3(t *testing.T) {
	rec := recording()
	rec.Calls[recorder.Call{Arch: recorder.ArchX86_64, Nr: unix.SYS_CLONE3}] = true
	rec.Calls[recorder.Call{Arch: recorder.ArchX86, Nr: 102}] = true // socketcall
	rec.Calls[recorder.Call{Arch: recorder.ArchX86, Nr: 54}] = true  // ioctl
	rec.Calls[recorder.Call{Arch: recorder.ArchX32, Nr: 41}] = true  // socket
	delete(rec.Args, unix.SYS_CLONE)
	delete(rec.Calls, recorder.Call{Arch: recorder.ArchX86_64, Nr: unix.SYS_CLONE})
	set, err := FromRecording(rec)
	if err != nil {
		t.Fatal(err)
	}
	p := set.Profile(&Meta{})
	prog, _, err := seccomp.Compile(&p.LinuxSeccomp)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := prog.Verdict(seccomp.AuditArchX86_64, unix.SYS_CLONE3, [6]uint64{})
	if v != unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS) {
		t.Errorf("clone3: %#x, want ENOSYS", v)
	}
	if v, _ := prog.Verdict(seccomp.AuditArchX86_64, unix.SYS_CLONE, [6]uint64{unix.CLONE_VM | unix.CLONE_THREAD}); v != unix.SECCOMP_RET_ALLOW {
		t.Errorf("clone of a thread after clone3: %#x", v)
	}
	if v, _ := prog.Verdict(seccomp.AuditArchX86_64, unix.SYS_CLONE, [6]uint64{unix.CLONE_NEWUSER}); v == unix.SECCOMP_RET_ALLOW {
		t.Errorf("clone of a user namespace allowed")
	}
	if !slices.Contains(p.Architectures, specs.ArchX86) || !slices.Contains(p.Architectures, specs.ArchX32) {
		t.Errorf("architectures %v", p.Architectures)
	}
	if !strings.Contains(strings.Join(set.Unnamed, "\n"), "x86 (32-bit) ioctl") {
		t.Errorf("the 32-bit ioctl is not reported: %q", set.Unnamed)
	}
	if set.Calls["ioctl"] || !set.Calls["socketcall"] {
		t.Errorf("32-bit calls: ioctl whole %v, socketcall %v", set.Calls["ioctl"], set.Calls["socketcall"])
	}
	if set.Calls["socket"] || len(set.Values["socket"]) != 1 {
		t.Errorf("x32 socket lifted the rule: %v %v", set.Calls["socket"], set.Values["socket"])
	}
	// It reads back the same.
	path := filepath.Join(t.TempDir(), "p.json")
	if err := Write(path, p); err != nil {
		t.Fatal(err)
	}
	if back, _, err := Read(path); err != nil || !back.Calls["clone3"] {
		t.Errorf("read back: %v", err)
	}
}

// A profile learn wrote reads back into the same set; merging is the
// union; other profiles are refused by name.
func TestWriteReadMerge(t *testing.T) {
	dir := t.TempDir()
	a, err := FromRecording(recording())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "p.json")
	if err := Write(path, a.Profile(&Meta{Runs: 1})); err != nil {
		t.Fatal(err)
	}
	back, meta, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Runs != 1 || !reflect.DeepEqual(back.Calls, a.Calls) || !reflect.DeepEqual(back.Values, a.Values) {
		t.Errorf("read back differs:\n%+v\n%+v", back, a)
	}
	b := NewSet()
	b.Calls["mkdirat"] = true
	b.addValue("socket", uint64(unix.AF_INET6)<<32|unix.SOCK_DGRAM)
	back.Merge(b)
	if !back.Calls["mkdirat"] || !back.Calls["read"] || len(back.Values["socket"]) != 2 {
		t.Errorf("merge: %+v", back)
	}
	// mmap seen both with and without PROT_EXEC: one unconditional entry.
	back.addValue("mmap", unix.PROT_EXEC)
	for _, sc := range back.Profile(&Meta{}).Syscalls {
		if len(sc.Names) == 1 && sc.Names[0] == "mmap" {
			t.Errorf("mmap kept an argument rule that allows everything: %+v", sc)
		}
	}
	for name, data := range map[string]string{
		"not json":   "{",
		"no block":   `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []}`,
		"deny rule":  `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}], "brigLearned": {"runs": 1}}`,
		"other args": `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 2, "value": 1, "op": "SCMP_CMP_EQ"}]}], "brigLearned": {"runs": 1}}`,
	} {
		f := filepath.Join(dir, "x.json")
		os.WriteFile(f, []byte(data), 0o644)
		if _, _, err := Read(f); !errors.Is(err, ErrNotLearned) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestCheckWritable(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{filepath.Join(dir, "p.json"), true},
		{filepath.Join(dir, "missing", "p.json"), false},
		{dir, false},
		{"/proc/brig-learn.json", false},
	} {
		if err := CheckWritable(tc.path); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.path, err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("the check left files: %v", ents)
	}
}

func TestFromAnnotations(t *testing.T) {
	base := t.TempDir()
	AnnotationDir = base
	os.Mkdir(filepath.Join(base, "real"), 0o700)
	os.Symlink("/etc", filepath.Join(base, "link"))
	in := func(p string) string { return filepath.Join(base, p) }
	for _, tc := range []struct {
		ann    map[string]string
		out    string
		merge  []string
		ok     bool
		errHas string
	}{
		{ann: nil},
		{ann: map[string]string{"other": "x"}},
		{ann: map[string]string{"brig.learn": in("a.json")}, out: in("a.json"), ok: true},
		{ann: map[string]string{"brig.learn": in("real/a.json")}, out: in("real/a.json"), ok: true},
		{ann: map[string]string{"io.containers.trace-syscall": "of:" + in("b.json")}, out: in("b.json"), ok: true},
		{ann: map[string]string{"io.containers.trace-syscall": "if:" + in("in.json") + ";of:" + in("b.json")}, out: in("b.json"), merge: []string{in("in.json")}, ok: true},
		{ann: map[string]string{"brig.learn": "rel.json"}, ok: true, errHas: "absolute"},
		{ann: map[string]string{"brig.learn": "/etc/sudoers.d/x"}, ok: true, errHas: "written under"},
		{ann: map[string]string{"brig.learn": base + "/../escape.json"}, ok: true, errHas: "clean absolute"},
		{ann: map[string]string{"brig.learn": in("link/sudoers.d/x")}, ok: true, errHas: "symbolic link"},
		{ann: map[string]string{"io.containers.trace-syscall": "if:/etc/shadow;of:" + in("b.json")}, ok: true, errHas: "written under"},
		{ann: map[string]string{"io.containers.trace-syscall": in("b.json")}, ok: true, errHas: "of:PATH"},
	} {
		flag, out, merge, ok, err := FromAnnotations(tc.ann)
		if ok != tc.ok || (tc.errHas == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.errHas)) {
			t.Errorf("%v: ok %v, err %v", tc.ann, ok, err)
			continue
		}
		if err == nil && (out != tc.out || !reflect.DeepEqual(merge, tc.merge)) {
			t.Errorf("%v: %q %q", tc.ann, out, merge)
		}
		if ok && !strings.Contains(flag, "annotations[") {
			t.Errorf("%v: flag %q", tc.ann, flag)
		}
	}
}

// TestReadInput: a plain allow-list another recorder wrote (as
// oci-seccomp-bpf-hook writes one) can be merged in; a profile with other
// rules can't, and neither is taken as learn's own output.
func TestReadInput(t *testing.T) {
	dir := t.TempDir()
	hook := filepath.Join(dir, "hook.json")
	os.WriteFile(hook, []byte(`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],
		"syscalls":[{"names":["read","write","exit_group"],"action":"SCMP_ACT_ALLOW","args":[],"comment":"","includes":{},"excludes":{}}]}`), 0o644)
	s, meta, err := ReadInput(hook)
	if err != nil || !s.Calls["read"] || !s.Calls["exit_group"] || meta.Runs != 1 {
		t.Fatalf("ReadInput of a plain allow-list: %v %+v %+v", err, s, meta)
	}
	if _, _, err := Read(hook); !errors.Is(err, ErrNotLearned) {
		t.Errorf("Read of a plain allow-list: %v, want ErrNotLearned", err)
	}
	docker := filepath.Join(dir, "docker.json")
	os.WriteFile(docker, []byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
		{"names":["ptrace"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644)
	if _, _, err := ReadInput(docker); !errors.Is(err, ErrNotLearned) {
		t.Errorf("ReadInput of a profile with other rules: %v, want ErrNotLearned", err)
	}
}

// The calls brig's seccomp listener doesn't see while recording
// (recorder.Unwatched, and seccomp.Kept but the forks, which are learned
// from the tasks they make) are allowed by every learned profile,
// whatever their arguments: a recording that can't see them loses
// nothing. A profile learned from an empty recording allows each.
func TestUnwatchedAreAlwaysAllowed(t *testing.T) {
	// A 32-bit task's call (x86 getpid) brings that ABI's names.
	s, err := FromRecording(&recorder.Recording{Calls: map[recorder.Call]bool{{Arch: recorder.ArchX86, Nr: 20}: true}, Args: map[int]map[uint64]bool{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range append(append([]string{}, recorder.Unwatched...), seccomp.Kept...) {
		if slices.Contains(seccomp.Forks, n) {
			continue // learned from the tasks they make
		}
		if !s.Calls[n] {
			t.Errorf("%s is not seen by the listener while learning, but a learned profile doesn't allow it always", n)
		}
		if _, ok := runtimeValues[n]; ok {
			t.Errorf("%s: a learned profile allows it only with values, but the listener doesn't see its values", n)
		}
	}
}
