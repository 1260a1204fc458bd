package recorder

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Access is how a file was used.
type Access uint8

const (
	Read    Access = 1 << iota // opened (a directory: listed)
	Exec                       // executed or mapped as a program
	Write                      // written
	Created                    // written, and born after the recording began
	Dir                        // the path is a directory
)

// Files records which files of a container's mounts its processes open,
// execute and write: fanotify marks on each mount the container sees that
// holds host files (not its proc, sys, dev, tmpfs or cgroup mounts), so
// only accesses through the container's own mounts are seen, by path as
// the container sees it. Only what was opened is seen: a path looked for
// and not found is not (seccomp's recorder doesn't see paths either).
// Mount marks need CAP_SYS_ADMIN: as root only.
type Files struct {
	fd       int
	buf      []byte
	procMu   sync.Mutex
	stopping atomic.Bool
	// mntns holds the container's mount namespace: once its processes
	// are gone the mounts would be detached, and a path read from an
	// event's fd after that would start at the mount's root.
	mntns *os.File
	start time.Time
	mu    sync.Mutex
	use   map[string]Access
	lost  bool
	done  chan struct{}
}

// skippedFS are the mounts the container has of its own, not host files.
var skippedFS = map[string]bool{"proc": true, "sysfs": true, "cgroup": true, "cgroup2": true, "devpts": true,
	"mqueue": true, "tmpfs": true, "devtmpfs": true, "securityfs": true, "debugfs": true, "tracefs": true, "bpf": true}

// WatchFiles marks the mounts of pid (a container's init, before its
// program starts) and records from now on.
func WatchFiles(pid int) (*Files, error) {
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK, unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC|unix.O_NOATIME)
	if err != nil {
		return nil, fmt.Errorf("recording files: fanotify: %w", err)
	}
	f := &Files{fd: fd, start: time.Now(), use: map[string]Access{}, done: make(chan struct{})}
	if f.mntns, err = os.Open(fmt.Sprintf("/proc/%d/ns/mnt", pid)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("recording files: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
			f.mntns.Close()
		}
	}()
	mounts, err := readMountInfo(pid)
	if err != nil {
		return nil, err
	}
	mask := uint64(unix.FAN_OPEN | unix.FAN_OPEN_EXEC | unix.FAN_MODIFY | unix.FAN_CLOSE_WRITE | unix.FAN_ONDIR)
	marked := 0
	for _, m := range mounts {
		if !m.holdsHostFiles() {
			continue
		}
		path := fmt.Sprintf("/proc/%d/root%s", pid, m.point)
		if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD|unix.FAN_MARK_MOUNT, mask, unix.AT_FDCWD, path); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // covered by a later mount
			}
			return nil, fmt.Errorf("recording files: mark %s: %w", m.point, err)
		}
		marked++
	}
	if marked == 0 {
		return nil, errors.New("recording files: the container shows no host files to record")
	}
	f.buf = make([]byte, 64*1024)
	ok = true
	go f.read()
	return f, nil
}

// mountEntry is one line of a mountinfo: where it is mounted (unescaped),
// the directory of its filesystem it shows, and the filesystem's type.
type mountEntry struct{ point, root, fstype string }

// holdsHostFiles says whether the mount shows host files (not the
// container's own proc, sys, dev, tmpfs or cgroup mounts; a bind of a
// directory of the host's tmpfs — its root is not the filesystem's —
// holds host files).
func (m mountEntry) holdsHostFiles() bool {
	return !skippedFS[m.fstype] || m.fstype == "tmpfs" && m.root != "/"
}

// readMountInfo reads the mounts of pid's mount namespace, in order.
func readMountInfo(pid int) ([]mountEntry, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mountEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		out = append(out, mountEntry{point: unescape(fields[4]), root: fields[3], fstype: fields[sep+1]})
	}
	return out, sc.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for a space...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// read takes events off the queue as they come. Events leave the queue
// only under procMu (here and in Snapshot's drain), so a snapshot has
// every event queued before it.
func (f *Files) read() {
	defer close(f.done)
	for !f.stopping.Load() {
		fds := []unix.PollFd{{Fd: int32(f.fd), Events: unix.POLLIN}}
		if n, _ := unix.Poll(fds, 100); n > 0 {
			f.drain()
		}
	}
}

// drain reads every queued event.
func (f *Files) drain() {
	f.procMu.Lock()
	defer f.procMu.Unlock()
	for {
		n, err := unix.Read(f.fd, f.buf)
		if err != nil || n <= 0 {
			return // EAGAIN: empty
		}
		for off := 0; off+unix.FAN_EVENT_METADATA_LEN <= n; {
			m := (*unix.FanotifyEventMetadata)(unsafe.Pointer(&f.buf[off]))
			if m.Event_len < unix.FAN_EVENT_METADATA_LEN || off+int(m.Event_len) > n {
				break
			}
			f.event(m)
			off += int(m.Event_len)
		}
	}
}

func (f *Files) event(m *unix.FanotifyEventMetadata) {
	if m.Mask&unix.FAN_Q_OVERFLOW != 0 {
		f.mu.Lock()
		f.lost = true
		f.mu.Unlock()
		return
	}
	if m.Fd < 0 {
		return
	}
	defer unix.Close(int(m.Fd))
	path, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(m.Fd)))
	if err != nil || !strings.HasPrefix(path, "/") {
		return
	}
	var a Access
	if m.Mask&unix.FAN_OPEN != 0 {
		a |= Read
	}
	if m.Mask&unix.FAN_OPEN_EXEC != 0 {
		a |= Exec
	}
	if m.Mask&(unix.FAN_MODIFY|unix.FAN_CLOSE_WRITE) != 0 {
		a |= Write
		var st unix.Statx_t
		if unix.Statx(int(m.Fd), "", unix.AT_EMPTY_PATH, unix.STATX_BTIME, &st) == nil && st.Mask&unix.STATX_BTIME != 0 &&
			!time.Unix(st.Btime.Sec, int64(st.Btime.Nsec)).Before(f.start) {
			a |= Created
		}
	}
	if m.Mask&unix.FAN_ONDIR != 0 {
		a |= Dir
	}
	f.mu.Lock()
	f.use[path] |= a
	f.mu.Unlock()
}

// Snapshot is what was used so far, by path, and whether events were lost
// (the queue overflowed: the record is incomplete).
func (f *Files) Snapshot() (map[string]Access, bool) {
	if !f.stopping.Load() {
		f.drain()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]Access, len(f.use))
	for p, a := range f.use {
		out[p] = a
	}
	return out, f.lost
}

// Start is when the recording began.
func (f *Files) Start() time.Time { return f.start }

// Close stops recording.
func (f *Files) Close() {
	if f.fd >= 0 && !f.stopping.Swap(true) {
		<-f.done
		unix.Close(f.fd)
		f.mntns.Close()
	}
}
