// Command mkbundle makes an OCI bundle with a busybox root filesystem and
// brig's default configuration, running the given command without a
// terminal. Used by `make demo` and the benchmark.
//
//	go run ./tools/mkbundle -brig bin/brig DIR [ARGS...]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func main() {
	brig := flag.String("brig", "bin/brig", "brig binary (for `brig spec`)")
	version := flag.String("oci-version", "", "ociVersion to write (crun 1.8 wants 1.0.x)")
	flag.Parse()
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: mkbundle [-brig BIN] DIR [ARGS...]")
		os.Exit(2)
	}
	if err := run(*brig, *version, flag.Arg(0), flag.Args()[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkbundle:", err)
		os.Exit(1)
	}
}

func run(brig, version, dir string, args []string) error {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return fmt.Errorf("busybox-static is needed: %w", err)
	}
	root := filepath.Join(dir, "rootfs")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	for _, d := range []string{"bin", "proc", "sys", "dev", "etc", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		return err
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		return err
	}
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" {
			if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
				return err
			}
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		return err
	}
	if out, err := exec.Command(brig, "spec", "--bundle", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("brig spec: %v: %s", err, out)
	}
	cfg := filepath.Join(dir, "config.json")
	raw, err := os.ReadFile(cfg)
	if err != nil {
		return err
	}
	var s specs.Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	if len(args) > 0 {
		s.Process.Args = args
		s.Process.Terminal = false
	}
	if version != "" {
		s.Version = version
	}
	raw, err = json.MarshalIndent(&s, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(cfg, raw, 0o644)
}
