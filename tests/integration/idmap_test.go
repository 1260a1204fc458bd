package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// idmapDir is a host directory, and a file in it, owned by uid/gid 1234.
func idmapDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp(workDir, "idmap-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	os.Chown(dir, 1234, 1234) // an inode whose owner a mount can't map is read-only there
	f := filepath.Join(dir, "owned")
	os.WriteFile(f, []byte("x"), 0o644)
	os.Chown(f, 1234, 1234)
	return dir
}

func userNSEnv(t *testing.T, args ...string) *env {
	e := newEnv(t, args...)
	e.setNamespace("user", "")
	e.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	e.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	return e
}

func hostOwner(t *testing.T, path string) uint32 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid
}

// TestIdmappedMounts: a bind mount with the idmap option is seen through
// the container's mapping (host ids appear as themselves, the container's
// root writes as on-disk root); one with mappings of its own through
// those; without, the same files belong to nobody.
func TestIdmappedMounts(t *testing.T) {
	dir := idmapDir(t)
	script := "stat -c %u:%g /var/owned; touch /var/new-$0 2>&1 && echo wrote || echo write-failed"
	for _, tc := range []struct {
		name  string
		mount specs.Mount
		want  string // owner of /var/owned inside
		owner uint32 // host owner of a file the container's root creates
	}{
		{"plain", specs.Mount{Destination: "/var", Type: "bind", Source: dir, Options: []string{"rbind"}}, "65534:65534", 100000},
		{"idmap", specs.Mount{Destination: "/var", Type: "bind", Source: dir, Options: []string{"rbind", "idmap"}}, "1234:1234", 0},
		{"own mappings", specs.Mount{Destination: "/var", Type: "bind", Source: dir, Options: []string{"rbind"},
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 1234, HostID: 100000, Size: 1}},
			GIDMappings: []specs.LinuxIDMapping{{ContainerID: 1234, HostID: 100000, Size: 1}}}, "0:0", 1234},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "_")
			e := userNSEnv(t, "sh", "-c", script, name)
			e.spec.Mounts = append(e.spec.Mounts, tc.mount)
			e.write()
			r := e.run()
			if r.code != 0 && strings.Contains(r.stderr, "can't be id-mapped") {
				t.Skipf("this kernel can't id-map %s's filesystem (tmpfs: Linux 6.3+): %s", dir, r.stderr)
			}
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			contains(t, r.stdout, tc.want+"\n", "owner seen inside")
			contains(t, r.stdout, "wrote", "root inside writes")
			if got := hostOwner(t, filepath.Join(dir, "new-"+name)); got != tc.owner {
				t.Errorf("the file the container's root made belongs to host uid %d, want %d", got, tc.owner)
			}
		})
	}
}

func TestIdmappedMountsBadInput(t *testing.T) {
	dir := idmapDir(t)
	for _, tc := range []struct {
		name  string
		edit  func(e *env)
		field string
	}{
		{"tmpfs", func(e *env) {
			e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/x", Type: "tmpfs", Source: "tmpfs", Options: []string{"idmap"}})
		}, ".options"},
		{"uid only", func(e *env) {
			e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: dir, Options: []string{"rbind"},
				UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1}}})
		}, ".uidMappings"},
		{"no mapping anywhere", func(e *env) {
			e.dropNamespace(specs.UserNamespace)
			e.spec.Linux.UIDMappings, e.spec.Linux.GIDMappings = nil, nil
			e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: dir, Options: []string{"rbind", "idmap"}})
		}, ".options"},
		{"zero size", func(e *env) {
			e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: dir, Options: []string{"rbind"},
				UIDMappings: []specs.LinuxIDMapping{{Size: 0}}, GIDMappings: []specs.LinuxIDMapping{{Size: 1}}})
		}, ".uidMappings[0].size"},
	} {
		e := userNSEnv(t, "true")
		tc.edit(e)
		e.write()
		r := e.run()
		if r.code == 0 || !strings.Contains(r.stderr, "mounts[") || !strings.Contains(r.stderr, tc.field) {
			t.Errorf("%s: exit %d, want an error naming mounts[N]%s: %s", tc.name, r.code, tc.field, r.stderr)
		}
		if ents := leftIn(e.root); len(ents) != 0 {
			t.Errorf("%s: state left: %v", tc.name, ents)
		}
	}
	// Without root: refused by name.
	e, run := rootlessEnv(t, "true")
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: dir, Options: []string{"rbind", "idmap"}})
	e.write()
	if r := run("run", "--bundle", e.bundle, e.id); r.code == 0 || !strings.Contains(r.stderr, "id-mapped mounts need root") {
		t.Errorf("rootless idmap: exit %d, %s", r.code, r.stderr)
	}
}

// TestBindSourceOutOfMappedRootsReach: with a user namespace, bind
// sources are cloned by brig (as root on the host), so a source under a
// directory the container's mapped root can't traverse still mounts.
func TestBindSourceOutOfMappedRootsReach(t *testing.T) {
	private := t.TempDir() // 0700, root's
	os.Chmod(private, 0o700)
	src := filepath.Join(private, "vol")
	os.Mkdir(src, 0o755)
	os.WriteFile(filepath.Join(src, "f"), []byte("reached\n"), 0o644)
	e := userNSEnv(t, "cat", "/var/f")
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/var", Type: "bind", Source: src, Options: []string{"rbind", "ro"}})
	e.write()
	if r := e.run(); r.code != 0 || r.stdout != "reached\n" {
		t.Errorf("bind source under a 0700 directory: exit %d, %q %s", r.code, r.stdout, r.stderr)
	}
}
