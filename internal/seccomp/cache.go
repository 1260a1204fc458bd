package seccomp

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	usable := c.usable()
	path := filepath.Join(c.Dir, key)
	if usable {
		if p, w, err := readEntry(path, key); err == nil {
			now := time.Now() // recently used: pruned last
			os.Chtimes(path, now, now)
			return p, w, nil
		}
	}
	p, w, err := compile0(sc)
	if err != nil {
		return nil, nil, err
	}
	if usable || c.create() {
		c.store(path, key, p, w)
	}
	return p, w, nil
}

// cacheKey digests what decides the program.
func cacheKey(sc *specs.LinuxSeccomp) (string, error) {
	prof, err := json.Marshal(sc)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", cacheFormat, runtime.GOARCH)
	maj, min, mic := libseccomp.GetLibraryVersion()
	fmt.Fprintf(h, "libseccomp %d.%d.%d\n", maj, min, mic)
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

func readEntry(path, key string) (*Program, Warnings, error) {
	data, err := os.ReadFile(path)
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

// usable: the directory is brig's: a directory (not a link), owned by this
// user, writable by no one else.
func (c *Cache) usable() bool {
	var st unix.Stat_t
	if err := unix.Lstat(c.Dir, &st); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR && int(st.Uid) == unix.Geteuid() && st.Mode&0o077 == 0
}

// create makes the directory (0700) if it is missing.
func (c *Cache) create() bool {
	if err := os.Mkdir(c.Dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return false
	}
	return c.usable()
}

// store writes an entry atomically (a temporary file, renamed), so a
// reader sees a whole entry or none; concurrent writers of one key write
// the same bytes.
func (c *Cache) store(path, key string, p *Program, w Warnings) {
	data, err := json.Marshal(cacheEntry{Key: key, Program: p, Warnings: w, Sum: entrySum(key, p, w), Format: cacheFormat, Arch: runtime.GOARCH})
	if err != nil {
		return
	}
	f, err := os.CreateTemp(c.Dir, ".tmp-*")
	if err != nil {
		return
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return
	}
	c.prune()
}

// prune keeps the cacheMax most recently used entries.
func (c *Cache) prune() {
	ents, err := os.ReadDir(c.Dir)
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
		os.Remove(filepath.Join(c.Dir, a.name))
	}
}
