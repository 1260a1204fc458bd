// Command brig-init is brig's container init and nothing else: the same
// code as `brig init` (internal/nsenter's constructor, then
// internal/initproc), in a binary without the command line's packages, so
// the Go runtime that starts in every container (and every brig exec)
// starts in about half the time brig's own does. brig starts it, from
// beside its own binary, only when it is the one built with it (the Go
// build ID the Makefile gives brig); otherwise brig starts itself as the
// init. It is not a command for people.
package main

import (
	"fmt"
	"os"

	"brig/internal/initproc"
	_ "brig/internal/nsenter" // the C constructor that enters namespaces
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "init" && os.Getenv("_BRIG_BOOTSTRAP") != "" {
		initproc.Main()
	}
	fmt.Fprintln(os.Stderr, "brig-init: brig's container init, started by brig; not a command")
	os.Exit(2)
}
