// Package nsenter holds brig's C constructor, which joins and creates
// namespaces before the Go runtime starts threads. Import it for its side
// effect from the brig binary only; see nsenter.c for the protocol.
package nsenter

/*
#cgo CFLAGS: -Wall -Wextra -O2
*/
import "C"
