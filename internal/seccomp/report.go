package seccomp

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Recorder makes seccomp denials visible (brig run --report-denials): the
// profile's errno rules become NOTIFY, brig is the listener, and for each
// notification it records the call and answers with the errno the profile
// gives, so the workload sees exactly the denial it would have got. At the
// end, Report names every denied call and how often.
type Recorder struct {
	Path   string // the listener socket, for linux.seccomp.listenerPath
	dir    string
	ln     *net.UnixListener
	errnos map[string]int16 // by syscall name; "" is the default
	mu     sync.Mutex
	counts map[string]int
	comms  map[string]map[string]bool // by call: the processes' names
	wg     sync.WaitGroup
}

// Record rewrites sc in place and starts listening.
func Record(sc *specs.LinuxSeccomp) (*Recorder, error) {
	dir, err := os.MkdirTemp("", "brig-seccomp-")
	if err != nil {
		return nil, err
	}
	r := &Recorder{Path: filepath.Join(dir, "listener.sock"), dir: dir, errnos: map[string]int16{}, counts: map[string]int{},
		comms: map[string]map[string]bool{}}
	errnoOf := func(p *uint) int16 {
		if p == nil {
			return int16(unix.EPERM)
		}
		return int16(*p)
	}
	if sc.DefaultAction == specs.ActErrno {
		r.errnos[""] = errnoOf(sc.DefaultErrnoRet)
		sc.DefaultAction = specs.ActNotify
	}
	for i := range sc.Syscalls {
		s := &sc.Syscalls[i]
		if s.Action != specs.ActErrno || len(s.Args) > 0 {
			continue // conditional denials keep their errno without a report
		}
		for _, n := range s.Names {
			r.errnos[n] = errnoOf(s.ErrnoRet)
		}
		s.Action, s.ErrnoRet = specs.ActNotify, nil
	}
	sc.ListenerPath = r.Path
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: r.Path, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	r.ln = ln
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

func (r *Recorder) accept() {
	defer r.wg.Done()
	for {
		conn, err := r.ln.AcceptUnix()
		if err != nil {
			return
		}
		buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		conn.Close()
		if err != nil {
			continue
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) == 0 {
			continue
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) == 0 {
			continue
		}
		r.wg.Add(1)
		go r.serve(fds[0])
	}
}

// serve answers notifications until every process using the filter is
// gone (the receive then fails).
func (r *Recorder) serve(fd int) {
	defer r.wg.Done()
	defer unix.Close(fd)
	for {
		req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(fd))
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		name, err := req.Data.Syscall.GetNameByArch(req.Data.Arch)
		if err != nil {
			name = fmt.Sprintf("syscall %d", req.Data.Syscall)
		}
		errno, ok := r.errnos[name]
		if !ok {
			errno = r.errnos[""]
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", req.Pid))
		r.mu.Lock()
		r.counts[name]++
		if c := strings.TrimSpace(string(comm)); c != "" {
			if r.comms[name] == nil {
				r.comms[name] = map[string]bool{}
			}
			r.comms[name][c] = true
		}
		r.mu.Unlock()
		libseccomp.NotifRespond(libseccomp.ScmpFd(fd), &libseccomp.ScmpNotifResp{ID: req.ID, Error: int32(errno)})
	}
}

// Denial is one call the profile denied: how often, with which errno, by
// which processes.
type Denial struct {
	Name      string
	Errno     string
	Count     int
	Processes []string
}

// Denials stops listening and returns the denials.
func (r *Recorder) Denials() []Denial {
	r.ln.Close()
	os.RemoveAll(r.dir)
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Denial
	for n, c := range r.counts {
		e, ok := r.errnos[n]
		if !ok {
			e = r.errnos[""]
		}
		d := Denial{Name: n, Errno: unix.ErrnoName(unix.Errno(e)), Count: c}
		for p := range r.comms[n] {
			d.Processes = append(d.Processes, p)
		}
		sort.Strings(d.Processes)
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Report stops listening and returns the denials, most frequent first:
// "mkdir (EACCES) ×3, keyctl (EPERM) ×1".
func (r *Recorder) Report() string {
	r.ln.Close()
	os.RemoveAll(r.dir)
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.counts))
	for n := range r.counts {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if r.counts[names[i]] != r.counts[names[j]] {
			return r.counts[names[i]] > r.counts[names[j]]
		}
		return names[i] < names[j]
	})
	var parts []string
	for _, n := range names {
		e, ok := r.errnos[n]
		if !ok {
			e = r.errnos[""]
		}
		parts = append(parts, fmt.Sprintf("%s (%s) ×%d", n, unix.ErrnoName(unix.Errno(e)), r.counts[n]))
	}
	return strings.Join(parts, ", ")
}
