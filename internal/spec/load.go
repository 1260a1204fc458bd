// Package spec loads an OCI bundle's config.json and validates it, naming
// the JSON path of every problem it finds, before anything is created.
package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ConfigName is the bundle's configuration file.
const ConfigName = "config.json"

// Load reads bundle/config.json. The returned spec has its root.path made
// absolute; it is not validated yet: plan.Build does that, with
// CheckRootfs, once for every way a spec reaches brig.
func Load(bundle string) (*specs.Spec, error) {
	abs, err := filepath.Abs(bundle)
	if err != nil {
		return nil, fmt.Errorf("bundle %q: %w", bundle, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("bundle %q: %w", bundle, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("bundle %q: not a directory", bundle)
	}
	data, err := os.ReadFile(filepath.Join(abs, ConfigName))
	if err != nil {
		return nil, fmt.Errorf("bundle %q: %w", bundle, err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if s.Root != nil && !filepath.IsAbs(s.Root.Path) {
		s.Root.Path = filepath.Join(abs, s.Root.Path)
	}
	return s, nil
}

// Parse decodes config.json text. Unknown fields are ignored, as the
// runtime-spec requires; fields of the wrong type are errors that name the
// field.
func Parse(data []byte) (*specs.Spec, error) {
	var s specs.Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("config.json: %w", describeJSONError(data, err))
	}
	if dec.More() {
		return nil, errors.New("config.json: trailing data after the JSON object")
	}
	return &s, nil
}

func describeJSONError(data []byte, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q: got JSON %s, want %s", te.Field, te.Value, te.Type)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
		return fmt.Errorf("syntax error at line %d (byte %d): %v", line, se.Offset, err)
	}
	if strings.Contains(err.Error(), "EOF") {
		return fmt.Errorf("incomplete JSON: %w", err)
	}
	return err
}

// CheckRootfs checks that root.path is a directory on the host.
func CheckRootfs(s *specs.Spec) error {
	fi, err := os.Stat(s.Root.Path)
	if err != nil {
		return fmt.Errorf("root.path %q: %w", s.Root.Path, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("root.path %q: not a directory", s.Root.Path)
	}
	return nil
}
