// Package state keeps a container's state on disk: one directory per
// container under the runtime root, holding state.json, the exec fifo and a
// lock file that serialises commands on the container.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/netdev"
	"brig/internal/resctrl"
	"golang.org/x/sys/unix"
)

// DefaultRoot is where state lives when --root is not given.
const DefaultRoot = "/run/brig"

// File names inside a container's state directory.
const (
	stateFile = "state.json"
	lockFile  = "lock"
	// FifoName is the exec fifo: init blocks opening it until start.
	FifoName = "exec.fifo"
)

// ErrNotExist is returned for a container id that has no state.
var ErrNotExist = errors.New("container does not exist")

// ErrExist is returned when creating an id that is taken.
var ErrExist = errors.New("container already exists")

// idChar: Go's \w (ASCII letters, digits, _) and "+-.", what runc's
// pattern allows; a loop, not a regexp compiled by every brig process
// (the init included) as it starts.
func idChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_+-.", c) >= 0
}

func validID(id string) bool {
	for i := 0; i < len(id); i++ {
		if !idChar(id[i]) {
			return false
		}
	}
	return true
}

// ValidateID checks a container id the way runc does: letters, digits and
// "_+-." only, no path separators, not "." or "..".
func ValidateID(id string) error {
	if id == "" {
		return errors.New("container id must not be empty")
	}
	if id == "." || id == ".." || !validID(id) || len(id) > 1024 {
		return fmt.Errorf("invalid container id %q: use letters, digits and _+-. only", id)
	}
	return nil
}

// State is what brig remembers of a container between commands.
type State struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Pid         int               `json:"pid"`
	PidStart    uint64            `json:"pidStart"` // start time of Pid, from /proc/PID/stat, to detect pid reuse
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
	Systemd     bool              `json:"systemd,omitempty"`
	Rootless    bool              `json:"rootless,omitempty"`
	Spec        *specs.Spec       `json:"spec"`
	Owner       string            `json:"owner,omitempty"`
	// NetDevices are the host network devices moved into the container
	// (linux.netDevices), for delete to move back.
	NetDevices []netdev.Moved `json:"netDevices,omitempty"`
	// Resctrl is the container's resctrl group (linux.intelRdt).
	Resctrl *resctrl.Group `json:"resctrl,omitempty"`
}

// Store is a runtime root directory.
type Store struct {
	Root string
}

// Dir is the state directory of id.
func (s Store) Dir(id string) string { return filepath.Join(s.Root, id) }

// Create makes the state directory for a new container. It fails with
// ErrExist if the id is taken. The returned Lock is held.
func (s Store) Create(id string) (*Lock, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.Root, 0o711); err != nil {
		return nil, fmt.Errorf("create state root %s: %w", s.Root, err)
	}
	dir := s.Dir(id)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container %q: %w", id, ErrExist)
		}
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	l, err := lock(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return l, nil
}

// Lock takes the container's lock; commands on one container run one at a
// time. It returns ErrNotExist if the container has no state directory.
func (s Store) Lock(id string) (*Lock, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := s.Dir(id)
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
		}
		return nil, err
	}
	l, err := lock(dir)
	if err != nil {
		return nil, err
	}
	// Again, under the lock: another command may have deleted it while
	// this one waited.
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err != nil {
		l.Unlock()
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
		}
		return nil, err
	}
	return l, nil
}

// Load reads id's state without locking (for state and list).
func (s Store) Load(id string) (*State, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(s.Dir(id), stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
		}
		return nil, fmt.Errorf("read state: %w", err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("parse state of %q: %w", id, err)
	}
	return &st, nil
}

// WarmUp builds what encoding/json needs to encode a State (its encoder
// for every type the spec has, made by reflection on first use: a few ms
// on a slow machine) without saving anything: create calls it in the
// background while the init works, so the Save that follows the init's
// "ready" — on the path to the container's start — finds it made.
func WarmUp() {
	json.Marshal(&State{})
}

// Save writes st atomically (write to a temporary file, rename).
func (s Store) Save(st *State) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	dir := s.Dir(st.ID)
	tmp, err := os.CreateTemp(dir, ".state-")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, stateFile))
}

// Remove deletes id's state directory.
func (s Store) Remove(id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	return os.RemoveAll(s.Dir(id))
}

// List returns the ids that have state, sorted.
func (s Store) List() ([]string, error) {
	ents, err := os.ReadDir(s.Root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(s.Root, e.Name(), stateFile)); err == nil {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Lock is a held flock on a container's lock file.
type Lock struct{ f *os.File }

func lock(dir string) (*Lock, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock container: %w", err)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock.
func (l *Lock) Unlock() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// UserRoot is where state lives when --root is not given: /run/brig
// for root; without root, as runc, the user's
// runtime directory ($XDG_RUNTIME_DIR/brig), else a per-user directory in
// the temporary directory.
func UserRoot() string {
	if os.Geteuid() == 0 {
		return DefaultRoot
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "brig")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("brig-%d", os.Geteuid()))
}
