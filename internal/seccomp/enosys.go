package seccomp

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Calls newer than a profile get ENOSYS instead of its default errno, so
// libc falls back to an older call it can use (clone3 → clone, faccessat2 →
// faccessat). "Newer" means a number above the highest one the profile
// names for that architecture, as runc defines it. libseccomp has no such
// action, so a short prefix is put before its program: for each known
// native architecture, compare the number with the profile's highest and
// return ENOSYS above it. x32 calls (x86_64 numbers with bit 30 set) are
// left to the main program.

var enosysArches = []struct {
	spec  specs.Arch
	lib   libseccomp.ScmpArch
	audit uint32
	x32   bool // arch shares numbers with x32 (bit 30)
}{
	{specs.ArchX86_64, libseccomp.ArchAMD64, AuditArchX86_64, true},
	{specs.ArchX86, libseccomp.ArchX86, AuditArchI386, false},
	{specs.ArchAARCH64, libseccomp.ArchARM64, AuditArchAArch64, false},
	{specs.ArchARM, libseccomp.ArchARM, AuditArchARM, false},
}

// enosysPrefix returns the instructions to put in front of a program for
// profile sc, or nil when the default action already allows (nothing is
// denied by default, so there is no default errno to correct).
func enosysPrefix(sc *specs.LinuxSeccomp) []unix.SockFilter {
	switch sc.DefaultAction {
	case specs.ActAllow, specs.ActLog:
		return nil
	}
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil
	}
	var out []unix.SockFilter
	for _, a := range enosysArches {
		present := a.lib == native
		for _, x := range sc.Architectures {
			present = present || x == a.spec
		}
		if !present {
			continue
		}
		max := -1
		ab, _ := abiOf(a.spec)
		for _, s := range sc.Syscalls {
			for _, n := range s.Names {
				for _, f := range numbers(ab, n) {
					if int(f.nr) > max {
						max = int(f.nr)
					}
				}
			}
		}
		if max < 0 {
			continue
		}
		out = append(out, block(a.audit, uint32(max), a.x32)...)
	}
	return out
}

// block is one architecture's check; every jump lands inside the block or
// just past it, where the next block (or libseccomp's program) starts.
func block(audit, max uint32, x32 bool) []unix.SockFilter {
	ld := func(off uint32) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: off}
	}
	jmp := func(op uint16, k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_JMP | op | unix.BPF_K, K: k, Jt: jt, Jf: jf}
	}
	ret := unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)}
	if x32 {
		return []unix.SockFilter{
			ld(4),                               // arch
			jmp(unix.BPF_JEQ, audit, 0, 4),      // other arch: next block
			ld(0),                               // nr
			jmp(unix.BPF_JGE, 0x40000000, 2, 0), // x32: next block
			jmp(unix.BPF_JGT, max, 0, 1),        // newer than the profile?
			ret,
		}
	}
	return []unix.SockFilter{
		ld(4),
		jmp(unix.BPF_JEQ, audit, 0, 3),
		ld(0),
		jmp(unix.BPF_JGT, max, 0, 1),
		ret,
	}
}
