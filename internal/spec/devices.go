package spec

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// DefaultDevices are the devices every container gets in /dev (runtime-spec
// "Default Devices"). The one list: rootfs creates them, and the cgroup's
// device rules allow them (cgroup.DefaultAllowedDevices).
var DefaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: mode(0o666)},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5, FileMode: mode(0o666)},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7, FileMode: mode(0o666)},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8, FileMode: mode(0o666)},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9, FileMode: mode(0o666)},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0, FileMode: mode(0o666)},
}

func mode(m os.FileMode) *os.FileMode { return &m }

// Devices are the devices a container's /dev gets: the defaults, and
// linux.devices, each replacing a default of the same path.
func Devices(configured []specs.LinuxDevice) []specs.LinuxDevice {
	devs := append([]specs.LinuxDevice(nil), DefaultDevices...)
	for _, d := range configured {
		replaced := false
		for i := range devs {
			if devs[i].Path == d.Path {
				devs[i], replaced = d, true
			}
		}
		if !replaced {
			devs = append(devs, d)
		}
	}
	return devs
}

// DeviceMode is the file type and permissions a device node is made with
// (0666 where linux.devices gives no fileMode).
func DeviceMode(d specs.LinuxDevice) (typ, perm uint32, err error) {
	switch d.Type {
	case "c", "u":
		typ = unix.S_IFCHR
	case "b":
		typ = unix.S_IFBLK
	case "p":
		typ = unix.S_IFIFO
	default:
		return 0, 0, fmt.Errorf("unknown device type %q", d.Type)
	}
	perm = 0o666
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	return typ, perm, nil
}
