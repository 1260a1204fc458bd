// Package initproc is the process inside the container before it becomes
// the container's program. It applies the isolation layers in one fixed
// order (layers.go is the only place that order is written in code), waits
// for `brig start`, and execs.
package initproc

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/caps"
)

// Config is sent by the brig command to init, as the first JSON message
// after the namespaces exist.
type Config struct {
	// Exec: join a running container and run Process (brig exec);
	// otherwise set up a new container from Spec.
	Exec         bool           `json:"exec,omitempty"`
	ID           string         `json:"id"`
	Bundle       string         `json:"bundle"`
	Spec         *specs.Spec    `json:"spec"`
	Process      *specs.Process `json:"process"`
	NoPivot      bool           `json:"noPivot,omitempty"`
	NoNewKeyring bool           `json:"noNewKeyring,omitempty"`
	FifoPath     string         `json:"fifoPath,omitempty"`
	UserNS       bool           `json:"userNS,omitempty"`   // in a user namespace of its own (new or joined)
	CgroupNS     bool           `json:"cgroupNS,omitempty"` // a new cgroup namespace
	ConsoleFD    int            `json:"consoleFD,omitempty"`
	TreeFDs      map[int]int    `json:"treeFDs,omitempty"` // mounts[i] → fd of its source's tree, made by brig
	PreserveFDs  int            `json:"preserveFDs,omitempty"`
	State        *specs.State   `json:"state,omitempty"` // for createContainer/startContainer hooks
	// DieWithParent: the container's process is killed when the brig
	// command that runs it dies (brig run -- CMD leaves nothing behind).
	DieWithParent bool `json:"dieWithParent,omitempty"`
	// LandlockABI is the host's, as the brig command found it.
	LandlockABI int `json:"landlockABI,omitempty"`
	// ParentFD is a pidfd of that brig command (with DieWithParent).
	ParentFD int `json:"parentFD,omitempty"`
	// Caps are process.capabilities resolved against the host by brig.
	Caps *caps.Sets `json:"caps,omitempty"`
	// ApparmorAvailable and SelinuxEnabled are what the host has.
	Debug bool `json:"debug,omitempty"`
}

// Message is what init sends back.
type Message struct {
	Type  string `json:"type"` // "cgroup", "hooks", "seccomp", "ready", "error", "warning"
	Error string `json:"error,omitempty"`
	FD    int    `json:"fd,omitempty"`
}

// Reply is the brig command's answer to a "cgroup", "hooks" or "seccomp"
// message.
type Reply struct {
	Error string `json:"error,omitempty"`
	// CgroupPaths answer "cgroup": the container's cgroups by controller
	// ("" for v2), none when it has none.
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
}
