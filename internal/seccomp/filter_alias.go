package seccomp

import "brig/internal/seccomp/filter"

// The compiled program's vocabulary, owned by internal/seccomp/filter.
type (
	// Evaluator gives a program's verdict on calls (filter.Evaluator).
	Evaluator = filter.Evaluator
)

// Audit architecture numbers (linux/audit.h) of the arches brig compiles for.
const (
	AuditArchX86_64  = filter.AuditArchX86_64
	AuditArchI386    = filter.AuditArchI386
	AuditArchAArch64 = filter.AuditArchAArch64
	AuditArchARM     = filter.AuditArchARM
)

// ActionName names a filter return value: "allow", "errno 1", "kill"...
func ActionName(v uint32) string { return filter.ActionName(v) }
