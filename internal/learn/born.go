package learn

import (
	"time"

	"golang.org/x/sys/unix"
)

// bornAfter says whether path was created after t (false where the
// filesystem keeps no birth time).
func bornAfter(path string, t time.Time) bool {
	var st unix.Statx_t
	if unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_BTIME, &st) != nil || st.Mask&unix.STATX_BTIME == 0 {
		return false
	}
	return !time.Unix(st.Btime.Sec, int64(st.Btime.Nsec)).Before(t)
}
