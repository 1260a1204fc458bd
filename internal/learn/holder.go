package learn

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"brig/internal/recorder"
)

// Annotation switches learning on for an OCI container (Docker, Podman,
// containerd, CRI): its value is where the profile goes.
const Annotation = "brig.learn"

// TraceAnnotation is oci-seccomp-bpf-hook's, which Podman users know:
// "of:OUTPUT", optionally with "if:INPUT;" before it (a profile to merge).
const TraceAnnotation = "io.containers.trace-syscall"

// HolderArg is the first argument of the process that records an OCI
// container: it outlives the `brig create` that starts it, and writes the
// profile when the container's process ends.
const HolderArg = "learn-holder"

// FromAnnotations gives the profile to write and those to merge, if the
// container's annotations ask for learning; ok is false when they don't.
func FromAnnotations(ann map[string]string) (flag, output string, merge []string, ok bool, err error) {
	flag = fmt.Sprintf("annotations[%q]", Annotation)
	if v, has := ann[Annotation]; has {
		output = v
	} else if v, has := ann[TraceAnnotation]; has {
		flag = fmt.Sprintf("annotations[%q]", TraceAnnotation)
		for _, part := range strings.Split(v, ";") {
			switch {
			case strings.HasPrefix(part, "of:"):
				output = strings.TrimPrefix(part, "of:")
			case strings.HasPrefix(part, "if:"):
				merge = append(merge, strings.TrimPrefix(part, "if:"))
			default:
				return flag, "", nil, true, fmt.Errorf("%s: %q is not of:PATH or if:PATH", flag, part)
			}
		}
	} else {
		return "", "", nil, false, nil
	}
	for _, p := range append([]string{output}, merge...) {
		if err := underAnnotationDir(p); err != nil {
			return flag, "", nil, true, fmt.Errorf("%s: %w", flag, err)
		}
	}
	return flag, output, merge, true, nil
}

// AnnotationDir is where profiles asked for by annotation are read and
// written. Whoever can set a container's annotations (an engine's user, a
// pod's author where the engine passes annotations on) chooses the path,
// and brig writes as root: so only below this directory, which brig makes
// root's alone, and never through a symbolic link.
var AnnotationDir = "/var/lib/brig/learn"

func underAnnotationDir(p string) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return fmt.Errorf("want a clean absolute path under %s, got %q", AnnotationDir, p)
	}
	rel, err := filepath.Rel(AnnotationDir, p)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("%q: profiles learned by annotation are written under %s only", p, AnnotationDir)
	}
	if err := os.MkdirAll(AnnotationDir, 0o700); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(AnnotationDir, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != 0 || st.Mode&0o022 != 0 {
		return fmt.Errorf("%s must be a directory of root's that no one else can write", AnnotationDir)
	}
	// Below it, no symbolic link (only root writes there, so the check
	// holds until brig writes).
	dir := AnnotationDir
	parts := strings.Split(rel, string(filepath.Separator))
	for _, part := range parts {
		dir = filepath.Join(dir, part)
		if err := unix.Lstat(dir, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return fmt.Errorf("%q: %s is a symbolic link", p, dir)
		}
	}
	return nil
}

// ErrorSuffix names the file beside an annotation's profile where the
// recorder says why it couldn't write the profile.
const ErrorSuffix = ".error"

// StartHolder starts the process that records the container whose cgroup
// v2 directory is cgroupDir and whose process is pid (created, not yet
// started), and returns once it is recording: from then on nothing the
// container's program does is missed. Every check NewSession makes is
// made before it returns, so bad input fails the create.
func StartHolder(flag, cgroupDir string, pid int, output string, merge []string, command []string, version string) error {
	if err := recorder.Supported(); err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	if _, err := NewSession(flag, output, merge, command, version); err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		w.Close()
		return err
	}
	defer null.Close()
	args := []string{HolderArg, cgroupDir, strconv.Itoa(pid), output, version, strconv.Itoa(len(merge))}
	args = append(append(args, merge...), command...)
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("learn: start the recorder: %w", err)
	}
	line, _ := bufio.NewReader(r).ReadString('\n')
	cmd.Process.Release()
	if line != "ok\n" {
		if line == "" {
			line = "the recorder exited"
		}
		return fmt.Errorf("learn: %s", strings.TrimSpace(line))
	}
	return nil
}

// HolderMain is the recording process: attach, say so on fd 3, wait for
// the container's process to end, write the profile. It never returns.
func HolderMain() {
	report := os.NewFile(3, "ready")
	fail := func(err error) {
		fmt.Fprintln(report, err)
		os.Exit(1)
	}
	a := os.Args[2:]
	if len(a) < 5 {
		fail(errors.New("learn-holder: bad arguments"))
	}
	pid, err1 := strconv.Atoi(a[1])
	nm, err2 := strconv.Atoi(a[4])
	if err := errors.Join(err1, err2); err != nil || len(a) < 5+nm {
		fail(fmt.Errorf("learn-holder: bad arguments: %v", err))
	}
	cgroupDir, output, version := a[0], a[2], a[3]
	merge, command := a[5:5+nm], a[5+nm:]
	sess, err := NewSession("learn", output, merge, command, version)
	if err != nil {
		fail(err)
	}
	// A pidfd before attaching: the pid can't be reused under us.
	pfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		fail(fmt.Errorf("learn: the container's process %d: %w", pid, err))
	}
	if err := sess.Attach(cgroupDir, pid); err != nil {
		fail(err)
	}
	// The files it uses, for the brig.landlock rule set beside the
	// profile (root only: a rootless engine's container gets the profile
	// alone).
	// A rule set that can't be learned is said beside where it would be
	// (PATH.landlock.error); the profile is learned all the same.
	llOut := output + LandlockSuffix
	if os.Geteuid() == 0 {
		err := sess.AttachFiles(pid)
		if err == nil {
			err = sess.AttachRoot(pid)
		}
		if err != nil {
			os.WriteFile(llOut+ErrorSuffix, []byte("brig learn: no Landlock rule set: "+err.Error()+"\n"), 0o600)
		} else {
			os.Remove(llOut + ErrorSuffix)
			sess.LandlockOut = llOut
		}
	}
	fmt.Fprintln(report, "ok")
	report.Close()
	for {
		fds := []unix.PollFd{{Fd: int32(pfd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err == nil || !errors.Is(err, unix.EINTR) {
			break
		}
	}
	// A container deleted before it ever ran: nothing was learned, and
	// nothing is written (Write says so). Any other failure is written
	// beside the profile (OUTPUT.error), as nobody waits for this process;
	// a later success removes it.
	_, err = sess.Write()
	sess.Close()
	if err != nil && !errors.Is(err, ErrNothingLearned) {
		os.WriteFile(output+ErrorSuffix, []byte("brig learn: "+err.Error()+"\n"), 0o600)
		os.Exit(1)
	}
	if err == nil {
		os.Remove(output + ErrorSuffix)
	}
	os.Exit(0)
}
