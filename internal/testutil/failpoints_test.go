package testutil

import (
	"maps"
	"slices"
	"testing"
)

// TestFailPointsMatchSource checks FailPoints against the Inject calls in
// the source: a step added to the code but to no crash test, or a listed
// step that no longer exists (renamed, or moved and renamed), fails.
func TestFailPointsMatchSource(t *testing.T) {
	src := SourceFailPoints(t)
	if len(src) == 0 {
		t.Fatal("no Inject call found in the source: the scan is broken")
	}
	listed := map[string]string{}
	for part, names := range FailPoints {
		for _, n := range names {
			if other, dup := listed[n]; dup {
				t.Errorf("fail point %q is listed for both %s and %s", n, other, part)
			}
			listed[n] = part
		}
	}
	for _, n := range slices.Sorted(maps.Keys(src)) {
		if _, ok := listed[n]; !ok {
			t.Errorf("fail point %q (in %v) is in no list of testutil.FailPoints: no crash test exercises it", n, src[n])
		}
		if len(src[n]) > 1 {
			t.Errorf("fail point %q is injected at %d places (%v): a name must mark one step", n, len(src[n]), src[n])
		}
	}
	for _, n := range slices.Sorted(maps.Keys(listed)) {
		if _, ok := src[n]; !ok {
			t.Errorf("fail point %q (listed for %s) has no Inject call in the source", n, listed[n])
		}
	}
}
