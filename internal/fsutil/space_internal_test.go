package fsutil

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFits_JudgesWhatAnUnprivilegedWriterMayUse: the blocks reserved
// for root (f_bfree - f_bavail) are no use to Papyra, which runs
// unprivileged, so they never count as free, whatever the agent's euid.
func TestFits_JudgesWhatAnUnprivilegedWriterMayUse(t *testing.T) {
	const bs = 4096
	st := unix.Statfs_t{Bsize: bs, Blocks: 100_000, Bfree: 10_000, Bavail: 5_000} // 5% reserved
	reserve := int64(100_000 * bs / 100)
	avail := int64(5_000 * bs)
	c := &Claim{what: "the test", dir: "/d"}
	for _, tt := range []struct {
		name       string
		held, need int64
		ok         bool
	}{
		{"UpToTheHeadroom", 0, avail - reserve, true},
		{"ABlockPastIt", 0, avail - reserve + bs, false},
		{"WhatRootCouldStillUse", 0, int64(10_000*bs) - reserve, false},
		{"HeldByOtherFilesCounts", bs, avail - reserve, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := c.fits(&st, tt.held, tt.need)
			if (err == nil) != tt.ok || err != nil && !errors.Is(err, unix.ENOSPC) {
				t.Errorf("fits(held %d, need %d): %v, want ok=%v", tt.held, tt.need, err, tt.ok)
			}
		})
	}
}
