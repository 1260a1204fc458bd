// Package filter is a compiled seccomp filter: its instructions and
// flags, how it travels to the init (JSON, the instructions as raw
// bytes), loading it with seccomp(2), and a BPF interpreter that gives
// its verdict on a call. It is what the container's init needs of
// seccomp, without the compiler, the profiles or libseccomp.
package filter

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Program is a compiled filter: the classic BPF instructions brig's compiler (or
// libseccomp) generated, and the seccomp(2) flags to load them with. Loading it
// allocates nothing, so it works under any rlimit the container sets.
type Program struct {
	Insns  []unix.SockFilter
	Flags  uintptr
	Notify bool
}

// Load installs the program on the calling thread, which must be locked to
// its goroutine and go on to execve (the new program keeps it).
//
// For a NOTIFY program it returns the listener's fd, and nothing else is
// done on the way out: every call the thread makes from here may wait for
// a listener, which needs that fd first (see initproc's handoff). Other
// programs return -1.
func (p *Program) Load() (int, error) {
	prog := unix.SockFprog{Len: uint16(len(p.Insns)), Filter: &p.Insns[0]}
	r, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, p.Flags, uintptr(unsafe.Pointer(&prog)))
	if e != 0 {
		return -1, fmt.Errorf("load seccomp filter: %w", e)
	}
	if p.Notify {
		return int(r), nil
	}
	if r != 0 {
		return -1, fmt.Errorf("load seccomp filter: thread %d could not be synchronised", r)
	}
	return -1, nil
}

// wireProgram is Program as it travels to the init: the instructions as
// their raw 8-byte form (base64 in JSON), not an object per instruction.
type wireProgram struct {
	Insns  []byte  `json:"insns"`
	Flags  uintptr `json:"flags,omitempty"`
	Notify bool    `json:"notify,omitempty"`
}

// MarshalJSON encodes the program compactly.
func (p Program) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireProgram{Insns: p.Bytes(), Flags: p.Flags, Notify: p.Notify})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (p *Program) UnmarshalJSON(data []byte) error {
	var w wireProgram
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	if len(w.Insns) > 8*4096 {
		return fmt.Errorf("seccomp: a BPF program of %d instructions", len(w.Insns)/8)
	}
	insns, err := DecodeInsns(w.Insns)
	if err != nil {
		return err
	}
	*p = Program{Insns: insns, Flags: w.Flags, Notify: w.Notify}
	return nil
}

// Bytes is the program in the kernel's sock_filter layout.
func (p *Program) Bytes() []byte {
	b := make([]byte, 0, 8*len(p.Insns))
	for _, in := range p.Insns {
		b = binary.NativeEndian.AppendUint16(b, in.Code)
		b = append(b, in.Jt, in.Jf)
		b = binary.NativeEndian.AppendUint32(b, in.K)
	}
	return b
}

// DecodeInsns reads instructions in the kernel's sock_filter layout.
func DecodeInsns(raw []byte) ([]unix.SockFilter, error) {
	if len(raw)%8 != 0 || len(raw) == 0 {
		return nil, fmt.Errorf("seccomp: a BPF program of %d bytes", len(raw))
	}
	insns := make([]unix.SockFilter, len(raw)/8)
	for i := range insns {
		b := raw[i*8:]
		insns[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:]), Jt: b[2], Jf: b[3],
			K: binary.NativeEndian.Uint32(b[4:]),
		}
	}
	return insns, nil
}
