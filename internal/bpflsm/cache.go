package bpflsm

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The kernel's BTF can't change without a reboot (modules have BTF of
// their own), so what the scan found is kept per boot: the first guarded
// run of a boot scans (17 ms here, half of it reading the 6 MB file),
// the next ones read a few hundred bytes. The file is brig's (the
// directory is the euid's and no one else's, as the seccomp cache's);
// one that doesn't hold every name asked for is scanned again and
// replaced.
type btfCache struct {
	Boot    string            `json:"boot"`
	Funcs   map[string]uint32 `json:"funcs"`
	Members map[string]uint32 `json:"members"`
}

// CacheDirName is the cache's directory under brig's state root.
const CacheDirName = ".bpflsm-cache"

// allFuncs are every hook a guard may attach to: one entry serves all.
func allFuncs() []string {
	var fs []string
	for _, h := range entryHooks {
		fs = append(fs, "bpf_lsm_"+h.hook)
	}
	return append(fs, "bpf_lsm_ptrace_access_check")
}

// cachedBTF is readKernelBTF(allFuncs(), fields), from dir when it holds
// this boot's.
func cachedBTF(dir string) (*btfInfo, error) {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if dir == "" || err != nil {
		return readKernelBTF(allFuncs(), fields)
	}
	id := strings.TrimSpace(string(boot))
	name := "btf-" + id + ".json"
	d, ok := openOwn(dir)
	if ok {
		defer unix.Close(d)
		if info, ok := readCache(d, name, id); ok {
			return info, nil
		}
	}
	info, err := readKernelBTF(allFuncs(), fields)
	if err != nil {
		return nil, err
	}
	if !ok {
		if os.MkdirAll(filepath.Dir(dir), 0o700) != nil || unix.Mkdir(dir, 0o700) != nil {
			return info, nil
		}
		if d, ok = openOwn(dir); !ok {
			return info, nil
		}
		defer unix.Close(d)
	}
	writeCache(d, name, btfCache{Boot: id, Funcs: info.funcs, Members: info.members})
	return info, nil
}

// openOwn opens dir if it is a directory of the euid's that no one else
// can write or read.
func openOwn(dir string) (int, bool) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, false
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || int(st.Uid) != unix.Geteuid() || st.Mode&0o077 != 0 {
		unix.Close(fd)
		return -1, false
	}
	return fd, true
}

func readCache(dir int, name, boot string) (*btfInfo, bool) {
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var c btfCache
	if err := json.NewDecoder(f).Decode(&c); err != nil || c.Boot != boot {
		return nil, false
	}
	for _, fn := range allFuncs() {
		if c.Funcs[fn] == 0 {
			return nil, false
		}
	}
	for _, m := range fields {
		if _, ok := c.Members[m]; !ok {
			return nil, false
		}
	}
	return &btfInfo{funcs: c.Funcs, members: c.Members}, true
}

// writeCache writes the entry atomically and removes other boots' files.
func writeCache(dir int, name string, c btfCache) {
	data, err := json.Marshal(c)
	if err != nil {
		return
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := ".tmp-" + hex.EncodeToString(rnd[:])
	fd, err := unix.Openat(dir, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return
	}
	_, werr := unix.Write(fd, data)
	unix.Close(fd)
	if werr != nil || unix.Renameat(dir, tmp, dir, name) != nil {
		unix.Unlinkat(dir, tmp, 0)
		return
	}
	if nd, err := unix.Dup(dir); err == nil {
		f := os.NewFile(uintptr(nd), "")
		defer f.Close()
		unix.Seek(nd, 0, 0)
		names, _ := f.Readdirnames(-1)
		for _, n := range names {
			if n != name && strings.HasPrefix(n, "btf-") {
				unix.Unlinkat(dir, n, 0)
			}
		}
	}
}
