package spec

import (
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// MountOptions is a mounts[].options list translated for the kernel.
type MountOptions struct {
	Flags       uintptr // mount(2) flags to set
	ClearFlags  uintptr // flags the options clear explicitly (rw, suid, dev, exec...)
	Propagation []uintptr
	// AttrSet and AttrClr are mount_setattr(2) attributes applied
	// recursively (the "r" options: rro, rnosuid, ...).
	AttrSet, AttrClr uint64
	Data             string // options the kernel gets as data (size=, mode=, newinstance...)
	Bind, Recursive  bool
	// Idmap: idmap or ridmap; IdmapRecursive: ridmap (every mount of the
	// tree id-mapped, not only its top).
	Idmap, IdmapRecursive bool
	TmpCopyUp             bool // tmpfs only: starts with a copy of what it covers (rootfs/copyup.go)
}

var flagOptions = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC}, "remount": {false, unix.MS_REMOUNT},
	"mand": {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
	"atime": {true, unix.MS_NOATIME}, "noatime": {false, unix.MS_NOATIME},
	"diratime": {true, unix.MS_NODIRATIME}, "nodiratime": {false, unix.MS_NODIRATIME},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"lazytime": {false, unix.MS_LAZYTIME}, "nolazytime": {true, unix.MS_LAZYTIME},
	"silent": {false, unix.MS_SILENT}, "loud": {true, unix.MS_SILENT},
	"defaults": {false, 0},
}

// modeOptions are the options that say what kind of mount it is.
var modeOptions = []string{"bind", "rbind", "idmap", "ridmap"}

// MountOptionNames are the mounts[].options brig reads itself (the rest go
// to the kernel as data); `brig features` lists these.
func MountOptionNames() []string {
	var out []string
	for o := range flagOptions {
		out = append(out, o)
	}
	for o := range propagationOptions {
		out = append(out, o)
	}
	for o := range recursiveAttrs {
		out = append(out, o)
	}
	out = append(out, modeOptions...)
	sort.Strings(out)
	return out
}

var propagationOptions = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

var recursiveAttrs = map[string]struct {
	clear bool
	attr  uint64
}{
	"rro": {false, unix.MOUNT_ATTR_RDONLY}, "rrw": {true, unix.MOUNT_ATTR_RDONLY},
	"rnosuid": {false, unix.MOUNT_ATTR_NOSUID}, "rsuid": {true, unix.MOUNT_ATTR_NOSUID},
	"rnodev": {false, unix.MOUNT_ATTR_NODEV}, "rdev": {true, unix.MOUNT_ATTR_NODEV},
	"rnoexec": {false, unix.MOUNT_ATTR_NOEXEC}, "rexec": {true, unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime": {false, unix.MOUNT_ATTR_NODIRATIME}, "rdiratime": {true, unix.MOUNT_ATTR_NODIRATIME},
	"rrelatime": {false, unix.MOUNT_ATTR_RELATIME}, "rnorelatime": {true, unix.MOUNT_ATTR_RELATIME},
	"rnoatime": {false, unix.MOUNT_ATTR_NOATIME}, "ratime": {true, unix.MOUNT_ATTR_NOATIME},
	"rstrictatime": {false, unix.MOUNT_ATTR_STRICTATIME}, "rnostrictatime": {true, unix.MOUNT_ATTR_STRICTATIME},
	"rnosymfollow": {false, unix.MOUNT_ATTR_NOSYMFOLLOW}, "rsymfollow": {true, unix.MOUNT_ATTR_NOSYMFOLLOW},
}

// ParseMountOptions translates a mount's options. Options brig does not
// know are passed to the kernel as data, as runc does.
func ParseMountOptions(opts []string) MountOptions {
	var m MountOptions
	var data []string
	for _, o := range opts {
		if f, ok := flagOptions[o]; ok {
			if f.clear {
				m.Flags &^= f.flag
				m.ClearFlags |= f.flag
			} else {
				m.Flags |= f.flag
				m.ClearFlags &^= f.flag
			}
			continue
		}
		if p, ok := propagationOptions[o]; ok {
			m.Propagation = append(m.Propagation, p)
			continue
		}
		if a, ok := recursiveAttrs[o]; ok {
			if a.clear {
				m.AttrClr |= a.attr
				m.AttrSet &^= a.attr
			} else {
				m.AttrSet |= a.attr
				m.AttrClr &^= a.attr
			}
			continue
		}
		switch o {
		case "bind":
			m.Bind = true
		case "rbind":
			m.Bind, m.Recursive = true, true
		case "idmap":
			m.Idmap = true
		case "ridmap":
			m.Idmap, m.IdmapRecursive = true, true
		case "tmpcopyup":
			m.TmpCopyUp = true
		case "":
		default:
			data = append(data, o)
		}
	}
	m.Data = strings.Join(data, ",")
	return m
}

// MountAttrs converts mount(2) flags to mount_setattr(2) attributes (the
// rootfs layer and the C init's program both set them on detached trees).
func MountAttrs(flags uintptr) uint64 {
	var a uint64
	if flags&unix.MS_RDONLY != 0 {
		a |= unix.MOUNT_ATTR_RDONLY
	}
	if flags&unix.MS_NOSUID != 0 {
		a |= unix.MOUNT_ATTR_NOSUID
	}
	if flags&unix.MS_NODEV != 0 {
		a |= unix.MOUNT_ATTR_NODEV
	}
	if flags&unix.MS_NOEXEC != 0 {
		a |= unix.MOUNT_ATTR_NOEXEC
	}
	if flags&unix.MS_NODIRATIME != 0 {
		a |= unix.MOUNT_ATTR_NODIRATIME
	}
	switch {
	case flags&unix.MS_NOATIME != 0:
		a |= unix.MOUNT_ATTR_NOATIME
	case flags&unix.MS_STRICTATIME != 0:
		a |= unix.MOUNT_ATTR_STRICTATIME
	}
	return a
}
