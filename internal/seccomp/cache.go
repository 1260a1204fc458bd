package seccomp

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// CacheDirName is the cache's directory under brig's state root.
const CacheDirName = ".seccomp-cache"

// cacheFormat changes whenever what Compile produces for the same profile
// changes (the compiler, the ENOSYS rule, this file's layout).
const cacheFormat = "brig-seccomp-cache-1"

// cacheMax is how many programs the cache keeps; the least recently used
// go first.
const cacheMax = 128

// Cache keeps compiled programs in a directory, keyed by a digest of
// everything that decides the program: the profile as the runtime-spec
// gives it, the architecture, libseccomp's version, this compiler's
// format and the brig binary itself. The first start of a profile
// compiles it (libseccomp, about 20 ms of CPU for the engines' default
// profile); the next ones read about 10 KB. An entry is checked when read
// — its key and a digest of its content — and one that fails the check is
// compiled again and replaced, never loaded; a directory that isn't
// brig's own (another owner, writable by others) is not used at all.
type Cache struct {
	Dir string
}

type cacheEntry struct {
	Key      string   `json:"key"`
	Program  *Program `json:"program"`
	Warnings Warnings `json:"warnings,omitempty"`
	Sum      string   `json:"sum"`
	Format   string   `json:"format"`
	Arch     string   `json:"arch"`
}

// compile0 is Compile; tests count its calls.
var compile0 = Compile

// Compile gives the program for sc from the cache, or compiles it and
// stores it. A cache that can't be used only costs the compile.
func (c *Cache) Compile(sc *specs.LinuxSeccomp) (*Program, Warnings, error) {
	if c == nil || c.Dir == "" {
		return compile0(sc)
	}
	key, err := cacheKey(sc)
	if err != nil {
		return compile0(sc)
	}
	dir := c.open()
	if dir != nil {
		defer dir.Close()
		if p, w, err := readEntry(dir, key); err == nil {
			now := time.Now() // recently used: pruned last
			unix.UtimesNanoAt(int(dir.Fd()), key, []unix.Timespec{unix.NsecToTimespec(now.UnixNano()), unix.NsecToTimespec(now.UnixNano())}, unix.AT_SYMLINK_NOFOLLOW)
			return p, w, nil
		}
	}
	p, w, err := compile0(sc)
	if err != nil {
		return nil, nil, err
	}
	if dir == nil {
		if err := os.Mkdir(c.Dir, 0o700); err == nil || errors.Is(err, os.ErrExist) {
			dir = c.open()
		}
		if dir != nil {
			defer dir.Close()
		}
	}
	if dir != nil {
		store(dir, key, p, w)
	}
	return p, w, nil
}

// cacheKey digests what decides the program: not where a NOTIFY listener
// is (a temporary socket per run for --report-denials and brig learn),
// which the program doesn't hold.
func cacheKey(sc *specs.LinuxSeccomp) (string, error) {
	k := *sc
	k.ListenerPath, k.ListenerMetadata = "", ""
	prof, err := json.Marshal(&k)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", cacheFormat, runtime.GOARCH)
	maj, min, mic := libseccomp.GetLibraryVersion()
	api, _ := libseccomp.GetAPI() // what libseccomp uses depends on the kernel
	var uts unix.Utsname
	unix.Uname(&uts)
	fmt.Fprintf(h, "libseccomp %d.%d.%d api %d kernel %s\n", maj, min, mic, api, unix.ByteSliceToString(uts.Release[:]))
	// The binary: a new brig (another compiler) never reads an old
	// brig's programs. Its identity, not its content: a stat, not a read.
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return "", err
	}
	fmt.Fprintf(h, "exe %d %d %d %d.%d\n", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
	h.Write(prof)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// entrySum digests an entry's content.
func entrySum(key string, p *Program, w Warnings) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%d %v\n", key, p.Flags, p.Notify)
	h.Write(p.Bytes())
	for _, x := range w {
		fmt.Fprintf(h, "%s\n", x)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// entryMax bounds what is read of an entry (a program of 4096
// instructions is 43 KB of base64).
const entryMax = 1 << 20

func readEntry(dir *os.File, key string) (*Program, Warnings, error) {
	fd, err := unix.Openat(int(dir.Fd()), key, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	f := os.NewFile(uintptr(fd), key)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || int(st.Uid) != unix.Geteuid() || st.Mode&0o022 != 0 || st.Size > entryMax {
		return nil, nil, errors.New("seccomp cache: an entry that isn't brig's")
	}
	data, err := io.ReadAll(io.LimitReader(f, entryMax))
	if err != nil {
		return nil, nil, err
	}
	var e cacheEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, nil, err
	}
	if e.Format != cacheFormat || e.Key != key || e.Program == nil || len(e.Program.Insns) == 0 {
		return nil, nil, errors.New("seccomp cache: a foreign entry")
	}
	if e.Sum != entrySum(key, e.Program, e.Warnings) {
		return nil, nil, errors.New("seccomp cache: a corrupt entry")
	}
	return e.Program, e.Warnings, nil
}

// open opens the cache directory if it is brig's: a directory (not a
// link), owned by this user, writable by no one else. Entries are then
// read and written relative to this handle, so a directory swapped after
// the check is never used.
func (c *Cache) open() *os.File {
	fd, err := unix.Open(c.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || int(st.Uid) != unix.Geteuid() || st.Mode&0o077 != 0 {
		unix.Close(fd)
		return nil
	}
	return os.NewFile(uintptr(fd), c.Dir)
}

// store writes an entry atomically (a temporary file, renamed), so a
// reader sees a whole entry or none; concurrent writers of one key write
// the same bytes.
func store(dir *os.File, key string, p *Program, w Warnings) {
	data, err := json.Marshal(cacheEntry{Key: key, Program: p, Warnings: w, Sum: entrySum(key, p, w), Format: cacheFormat, Arch: runtime.GOARCH})
	if err != nil {
		return
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := ".tmp-" + hex.EncodeToString(rnd[:])
	dfd := int(dir.Fd())
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dfd, tmp, dfd, key)
	}
	if err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return
	}
	prune(dir)
}

// prune keeps the cacheMax most recently used entries.
func prune(dir *os.File) {
	ents, err := dir.ReadDir(-1)
	dir.Seek(0, io.SeekStart)
	if err != nil || len(ents) <= cacheMax {
		return
	}
	type aged struct {
		name string
		at   int64
	}
	var all []aged
	for _, e := range ents {
		if info, err := e.Info(); err == nil {
			all = append(all, aged{e.Name(), info.ModTime().UnixNano()})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].at < all[j].at })
	for _, a := range all[:len(all)-cacheMax] {
		unix.Unlinkat(int(dir.Fd()), a.name, 0)
	}
}
