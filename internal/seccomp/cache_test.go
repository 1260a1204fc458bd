package seccomp

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// countCompiles counts the compiles behind the cache for one test.
func countCompiles(t *testing.T) *atomic.Int32 {
	var n atomic.Int32
	orig := compile0
	compile0 = func(sc *specs.LinuxSeccomp) (*Program, Warnings, error) {
		n.Add(1)
		return orig(sc)
	}
	t.Cleanup(func() { compile0 = orig })
	return &n
}

func cacheProfile() *specs.LinuxSeccomp {
	sc := DefaultProfile(nil, runtime.GOARCH, true)
	sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{Names: []string{"no_such_call_xyz"}, Action: specs.ActAllow})
	return sc
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// A miss compiles and stores; a hit reads the same program and warnings
// without compiling; another profile is another entry.
func TestCacheHitMissInvalidate(t *testing.T) {
	n := countCompiles(t)
	c := &Cache{Dir: filepath.Join(t.TempDir(), CacheDirName)}
	sc := cacheProfile()
	p1, w1, err := c.Compile(sc)
	if err != nil {
		t.Fatal(err)
	}
	if n.Load() != 1 || len(entries(t, c.Dir)) != 1 {
		t.Fatalf("miss: %d compiles, entries %v", n.Load(), entries(t, c.Dir))
	}
	if fi, err := os.Stat(c.Dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache directory mode: %v %v", fi.Mode(), err)
	}
	p2, w2, err := c.Compile(sc)
	if err != nil {
		t.Fatal(err)
	}
	if n.Load() != 1 {
		t.Errorf("hit compiled again")
	}
	if !reflect.DeepEqual(p1, p2) || !reflect.DeepEqual(w1, w2) || len(w2) != 1 {
		t.Errorf("hit differs: %d vs %d insns, warnings %q vs %q", len(p1.Insns), len(p2.Insns), w1, w2)
	}
	// A changed profile: a new key, compiled, stored beside.
	sc.Syscalls = sc.Syscalls[1:]
	if _, _, err := c.Compile(sc); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 || len(entries(t, c.Dir)) != 2 {
		t.Errorf("changed profile: %d compiles, entries %v", n.Load(), entries(t, c.Dir))
	}
}

// A corrupt or foreign entry is never loaded: it is compiled again and
// replaced.
func TestCacheCorruptEntry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(data []byte) []byte
	}{
		{"flipped byte in the program", func(d []byte) []byte {
			// inside the base64 of the instructions
			i := len(d) / 2
			if d[i] == 'A' {
				d[i] = 'B'
			} else {
				d[i] = 'A'
			}
			return d
		}},
		{"truncated", func(d []byte) []byte { return d[:len(d)/3] }},
		{"not json", func(d []byte) []byte { return []byte("#!/bin/sh\n") }},
		{"another key's entry", func(d []byte) []byte { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := countCompiles(t)
			c := &Cache{Dir: filepath.Join(t.TempDir(), CacheDirName)}
			sc := cacheProfile()
			want, _, err := c.Compile(sc)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(c.Dir, entries(t, c.Dir)[0])
			data, _ := os.ReadFile(path)
			if d := tc.damage(data); d != nil {
				os.WriteFile(path, d, 0o600)
			} else {
				// An entry made for another profile, under this name.
				other := cacheProfile()
				other.Syscalls = other.Syscalls[2:]
				c2 := &Cache{Dir: filepath.Join(t.TempDir(), CacheDirName)}
				c2.Compile(other)
				od, _ := os.ReadFile(filepath.Join(c2.Dir, entries(t, c2.Dir)[0]))
				os.WriteFile(path, od, 0o600)
				n.Store(1)
			}
			got, _, err := c.Compile(sc)
			if err != nil {
				t.Fatal(err)
			}
			if n.Load() != 2 {
				t.Errorf("the damaged entry was used (%d compiles)", n.Load())
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("recompiled program differs")
			}
			if _, _, err := readEntry(c.open(), entries(t, c.Dir)[0]); err != nil {
				t.Errorf("the entry was not replaced: %v", err)
			}
		})
	}
}

// A directory brig doesn't own alone is not used.
func TestCacheUnsafeDirectory(t *testing.T) {
	n := countCompiles(t)
	dir := filepath.Join(t.TempDir(), CacheDirName)
	os.Mkdir(dir, 0o777)
	os.Chmod(dir, 0o777)
	c := &Cache{Dir: dir}
	for range 2 {
		if _, _, err := c.Compile(cacheProfile()); err != nil {
			t.Fatal(err)
		}
	}
	if n.Load() != 2 || len(entries(t, dir)) != 0 {
		t.Errorf("a world-writable cache was used: %d compiles, %v", n.Load(), entries(t, dir))
	}
}

// A cache directory reached through a symbolic link, or an entry that is
// a link or another's file, is not used; where a NOTIFY listener is
// doesn't make another entry.
func TestCacheLinksOwnersListener(t *testing.T) {
	n := countCompiles(t)
	real := filepath.Join(t.TempDir(), "real")
	os.Mkdir(real, 0o700)
	link := filepath.Join(t.TempDir(), CacheDirName)
	os.Symlink(real, link)
	c := &Cache{Dir: link}
	c.Compile(cacheProfile())
	if len(entries(t, real)) != 0 {
		t.Errorf("a cache reached through a link was written: %v", entries(t, real))
	}
	// A good cache, then its entry replaced by a link to a valid entry
	// elsewhere: compiled again.
	c = &Cache{Dir: filepath.Join(t.TempDir(), CacheDirName)}
	sc := cacheProfile()
	c.Compile(sc)
	name := entries(t, c.Dir)[0]
	elsewhere := filepath.Join(t.TempDir(), "entry")
	data, _ := os.ReadFile(filepath.Join(c.Dir, name))
	os.WriteFile(elsewhere, data, 0o600)
	os.Remove(filepath.Join(c.Dir, name))
	os.Symlink(elsewhere, filepath.Join(c.Dir, name))
	before := n.Load()
	c.Compile(sc)
	if n.Load() != before+1 {
		t.Errorf("an entry that is a link was read")
	}
	// Another owner's entry.
	os.Chown(filepath.Join(c.Dir, name), 1000, 1000)
	before = n.Load()
	c.Compile(sc)
	if os.Geteuid() == 0 && n.Load() != before+1 {
		t.Errorf("another user's entry was read")
	}
	// The listener's path is not part of the key.
	a, b := cacheProfile(), cacheProfile()
	a.ListenerPath, b.ListenerPath = "/tmp/a.sock", "/tmp/b.sock"
	ka, _ := cacheKey(a)
	kb, _ := cacheKey(b)
	if ka != kb {
		t.Errorf("listener path changes the key")
	}
}

// Twenty first uses at once: every one gets the right program, and the
// cache holds one whole entry.
func TestCacheConcurrentFirstUse(t *testing.T) {
	c := &Cache{Dir: filepath.Join(t.TempDir(), CacheDirName)}
	sc := cacheProfile()
	want, _, err := Compile(sc)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, _, err := c.Compile(sc)
			if err == nil && !reflect.DeepEqual(p, want) {
				err = os.ErrInvalid
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	names := entries(t, c.Dir)
	if len(names) != 1 {
		t.Fatalf("entries %v", names)
	}
	if _, _, err := readEntry(c.open(), names[0]); err != nil {
		t.Error(err)
	}
}

func BenchmarkCompileDefault(b *testing.B) {
	sc := DefaultProfile(nil, runtime.GOARCH, true)
	for b.Loop() {
		if _, _, err := Compile(sc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCacheHitDefault(b *testing.B) {
	c := &Cache{Dir: filepath.Join(b.TempDir(), CacheDirName)}
	sc := DefaultProfile(nil, runtime.GOARCH, true)
	c.Compile(sc)
	for b.Loop() {
		if _, _, err := c.Compile(sc); err != nil {
			b.Fatal(err)
		}
	}
}
