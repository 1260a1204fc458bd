// Package lsm applies Linux Security Module labels at exec: an AppArmor
// profile and an SELinux process label. Writes go through a procfs handle
// that is checked to be a real procfs, so a container can't redirect them.
package lsm

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/moby/profiles/apparmor"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/cyphar/filepath-securejoin/pathrs-lite/procfs"
	"github.com/opencontainers/selinux/go-selinux"
)

// AppArmorEnabled reports whether the host runs AppArmor.
var AppArmorEnabled = sync.OnceValue(func() bool {
	data, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.HasPrefix(string(data), "Y")
})

// SELinuxEnabled reports whether the host runs SELinux.
func SELinuxEnabled() bool { return selinux.GetEnabled() }

// ErrNoAppArmor is returned when a profile is named on a host without
// AppArmor.
var ErrNoAppArmor = errors.New("AppArmor is not enabled on this host")

// ErrAppArmorDefaultNeedsRoot: without root, brig can't load its default
// AppArmor profile; the container runs without one, and brig says so.
var ErrAppArmorDefaultNeedsRoot = errors.New("AppArmor: brig's default profile is not applied: loading it needs root (name a loaded profile in process.apparmorProfile)")

// CheckSELinux reports, before anything is created, an SELinux label the
// host can't apply. (The AppArmor profile is settled by ResolveAppArmor in
// the parent, which sees the host's /sys: the container's may not.)
func CheckSELinux(label string) error {
	if label != "" && !SELinuxEnabled() {
		return fmt.Errorf("process.selinuxLabel %q: SELinux is not enabled on this host", label)
	}
	return nil
}

// DefaultAppArmorProfile is the profile brig generates, loads and applies
// when the host runs AppArmor and a config names none: Docker's
// docker-default (moby/profiles' template) under brig's name. It denies
// mount, writes to most of /proc and /sys, and ptrace and signals across
// profiles.
const DefaultAppArmorProfile = "brig-default"

// ResolveAppArmor returns the profile a container process runs under,
// checked before anything is created: a named profile must be loaded
// ("unconfined" names none); no name means brig's default where the host
// runs AppArmor (loaded with apparmor_parser the first time) and nothing
// where it doesn't.
func ResolveAppArmor(name string) (string, error) {
	if !AppArmorEnabled() {
		if name != "" && name != "unconfined" {
			return "", fmt.Errorf("process.apparmorProfile %q: %w", name, ErrNoAppArmor)
		}
		return "", nil
	}
	if name == "unconfined" {
		return name, nil
	}
	if os.Geteuid() != 0 {
		// Without root the loaded profiles can't be listed nor loaded:
		// a named profile is tried at exec; brig's default is left out,
		// and Create says so.
		if name == "" {
			return "", ErrAppArmorDefaultNeedsRoot
		}
		return name, nil
	}
	if name != "" {
		if loaded, err := apparmor.IsLoaded(name); err == nil && !loaded {
			return "", fmt.Errorf("process.apparmorProfile %q: no profile of that name is loaded (load it with apparmor_parser -r FILE)", name)
		}
		return name, nil
	}
	loaded, err := apparmor.IsLoaded(DefaultAppArmorProfile)
	if err != nil {
		return "", fmt.Errorf("apparmor: list loaded profiles: %w", err)
	}
	if !loaded {
		if _, err := exec.LookPath("apparmor_parser"); err != nil {
			return "", errors.New("process.apparmorProfile: AppArmor is enabled but apparmor_parser, which loads brig's default profile, is missing: install apparmor, or name a profile (\"unconfined\" for none)")
		}
		if err := apparmor.InstallDefault(DefaultAppArmorProfile); err != nil {
			return "", fmt.Errorf("apparmor: load the default profile %s: %w", DefaultAppArmorProfile, err)
		}
	}
	return DefaultAppArmorProfile, nil
}

// SetAppArmorExec makes the next execve enter profile.
func SetAppArmorExec(profile string) error {
	commit, err := openAppArmorAttr("exec", "exec "+profile, profile)
	if err != nil {
		return err
	}
	return commit()
}

// PrepareAppArmorChange opens what entering profile now (rather than at
// the next execve) writes to, and returns the function that enters it. A
// profile change at execve makes it a secure exec, which clears the
// parent-death signal: a process that must die with its parent enters the
// profile before its execve instead. The write is split from the open so
// that it can come after Landlock, which would forbid the open, and
// whose all-threads restriction signals threads the profile would forbid
// signalling; the change applies to the calling thread only, the one that
// goes on to execve.
func PrepareAppArmorChange(profile string) (func() error, error) {
	return openAppArmorAttr("current", "changeprofile "+profile, profile)
}

// openAppArmorAttr runs in the container's init: profile was resolved by
// the parent ("" where the host has no AppArmor), so it is not checked
// again against a /sys the container may not have.
func openAppArmorAttr(attr, value, profile string) (func() error, error) {
	if profile == "" {
		return func() error { return nil }, nil
	}
	proc, err := procfs.OpenProcRoot()
	if err != nil {
		return nil, fmt.Errorf("apparmor: open procfs: %w", err)
	}
	defer proc.Close()
	f, closer, err := proc.OpenThreadSelf("attr/apparmor/" + attr)
	if err != nil {
		f, closer, err = proc.OpenThreadSelf("attr/" + attr)
		if err != nil {
			return nil, fmt.Errorf("apparmor: open %s attr: %w", attr, err)
		}
	}
	defer closer()
	defer f.Close()
	wf, err := pathrs.Reopen(f, os.O_WRONLY)
	if err != nil {
		return nil, fmt.Errorf("apparmor: reopen %s attr: %w", attr, err)
	}
	return func() error {
		defer wf.Close()
		if _, err := wf.WriteString(value); err != nil {
			return fmt.Errorf("apparmor: set profile %q: %w", profile, err)
		}
		return nil
	}, nil
}

// SetSELinuxKeyLabel makes keyrings this thread creates get label, until
// the returned function resets it.
func SetSELinuxKeyLabel(label string) (func(), error) {
	if label == "" {
		return func() {}, nil
	}
	if err := selinux.SetKeyLabel(label); err != nil {
		return nil, fmt.Errorf("selinux: set keyring label %q: %w", label, err)
	}
	return func() { selinux.SetKeyLabel("") }, nil
}

// SetSELinuxExec sets the label the next execve gets.
func SetSELinuxExec(label string) error {
	if label == "" {
		return nil
	}
	if err := selinux.SetExecLabel(label); err != nil {
		return fmt.Errorf("selinux: set exec label %q: %w", label, err)
	}
	return nil
}
