// Package nsenter holds brig's C constructor, which joins and creates
// namespaces before the Go runtime starts threads, and the C init that
// runs an init program there (program.c). Import it from brig's binaries
// only; see nsenter.c for the protocol.
package nsenter

/*
#cgo CFLAGS: -Wall -Wextra -O2
extern unsigned long long brig_nofile_cur, brig_nofile_max;
extern int brig_have_nofile;
*/
import "C"

// OriginalNofile is RLIMIT_NOFILE as an init started with it, before the
// Go runtime raised the soft limit to the hard one; ok is false outside
// an init. The container's process must not inherit the raised limit.
func OriginalNofile() (cur, max uint64, ok bool) {
	return uint64(C.brig_nofile_cur), uint64(C.brig_nofile_max), C.brig_have_nofile != 0
}
