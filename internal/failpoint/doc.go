// Package failpoint marks the named steps of a compaction where the crash
// harness kills the process or injects an error.
//
// In normal builds every function here is an empty stub the compiler
// inlines away, so release binaries carry no test hooks. Built with
// `-tags failpoints`, Inject reads PAPYRA_FAILPOINT ("name" or
// "name:action", comma-separated) and, when the step's name matches, either
// kills the process with SIGKILL (action "kill", the default), sleeps
// (action "sleep=DURATION", to widen a race window), waits until a file
// exists (action "wait=PATH": the test decides when the step goes on) or
// returns an injected ENOSPC (action "enospc"). PAPYRA_FAILPOINT_LOG names
// a file to which every step reached is appended, one name a line.
//
// internal/testutil lists the named steps of each part
// (testutil.FailPoints); a test there checks that list against the
// Inject calls in the source.
package failpoint
