//go:build tools

// The OCI runtime-tools validation programs this module pins: v0.9.0 with
// the 2019 dependencies it builds with (runtime-spec v1.0.2, selinux v1.6.0).
package tools

import (
	_ "github.com/opencontainers/runtime-tools/cmd/runtimetest"
	_ "github.com/opencontainers/runtime-tools/validation/util"
)
