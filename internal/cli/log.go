package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// Logger writes brig's messages: always to stderr for errors and
// warnings, and to --log in text or JSON (the format containerd parses:
// one object per line with level, msg and time).
type Logger struct {
	file   *os.File
	json   bool
	debug  bool
	stderr io.Writer
}

// NewLogger opens the log (path "": stderr only).
func NewLogger(path, format string, debug bool, stderr io.Writer) (*Logger, error) {
	l := &Logger{json: format == "json", debug: debug, stderr: stderr}
	if path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("--log %s: %w", path, err)
		}
		l.file = f
	}
	return l, nil
}

func (l *Logger) write(level, msg string) {
	if l.file == nil {
		return
	}
	if l.json {
		data, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": time.Now().UTC().Format(time.RFC3339Nano)})
		l.file.Write(append(data, '\n'))
		return
	}
	fmt.Fprintf(l.file, "%s %s: %s\n", time.Now().UTC().Format(time.RFC3339), level, msg)
}

// Error logs msg and writes it to stderr.
func (l *Logger) Error(msg string) {
	l.write("error", msg)
	fmt.Fprintln(l.stderr, "brig:", msg)
}

// Warn logs a warning and writes it to stderr.
func (l *Logger) Warn(msg string) {
	l.write("warning", msg)
	fmt.Fprintln(l.stderr, "brig: warning:", msg)
}

// Debug logs msg with --debug.
func (l *Logger) Debug(msg string) {
	if !l.debug {
		return
	}
	l.write("debug", msg)
	if l.file == nil {
		fmt.Fprintln(l.stderr, "brig: debug:", msg)
	}
}

// Close closes the log file.
func (l *Logger) Close() {
	if l.file != nil {
		l.file.Close()
	}
}
