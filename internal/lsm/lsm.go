// Package lsm applies Linux Security Module labels at exec: an AppArmor
// profile and an SELinux process label. Writes go through a procfs handle
// that is checked to be a real procfs, so a container can't redirect them.
package lsm

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

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

// CheckAvailable reports, before anything is created, a label the host
// can't apply.
func CheckAvailable(apparmor, selinuxLabel string) error {
	if apparmor != "" && apparmor != "unconfined" && !AppArmorEnabled() {
		return fmt.Errorf("process.apparmorProfile %q: %w", apparmor, ErrNoAppArmor)
	}
	if selinuxLabel != "" && !SELinuxEnabled() {
		return fmt.Errorf("process.selinuxLabel %q: SELinux is not enabled on this host", selinuxLabel)
	}
	return nil
}

// SetAppArmorExec makes the next execve enter profile.
func SetAppArmorExec(profile string) error {
	if profile == "" || !AppArmorEnabled() {
		return nil
	}
	proc, err := procfs.OpenProcRoot()
	if err != nil {
		return fmt.Errorf("apparmor: open procfs: %w", err)
	}
	defer proc.Close()
	f, closer, err := proc.OpenThreadSelf("attr/apparmor/exec")
	if err != nil {
		f, closer, err = proc.OpenThreadSelf("attr/exec")
		if err != nil {
			return fmt.Errorf("apparmor: open exec attr: %w", err)
		}
	}
	defer closer()
	defer f.Close()
	wf, err := pathrs.Reopen(f, os.O_WRONLY)
	if err != nil {
		return fmt.Errorf("apparmor: reopen exec attr: %w", err)
	}
	defer wf.Close()
	if _, err := wf.WriteString("exec " + profile); err != nil {
		return fmt.Errorf("apparmor: set profile %q: %w", profile, err)
	}
	return nil
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
