// Package durability holds no code: its tests run the built binary under
// strace and check the order of the system calls that durability rests
// on (the crash-consistency checking of ALICE, OSDI '14). A SIGKILL keeps
// the page cache, so the crash harness cannot see a missing fsync; the
// recorded order can.
package durability
