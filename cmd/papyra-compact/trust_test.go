package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestCLI_UntrustedConfig runs check on a configuration its user owns, in
// a directory that user owns: as that (unprivileged) user it is fine,
// as root it is refused with exit 2, each problem named. check also warns
// of a password_file others can read.
func TestCLI_UntrustedConfig(t *testing.T) {
	alice := testutil.NewUser(t)
	// Somewhere alice may reach: t.TempDir's parent is private.
	base, err := os.MkdirTemp("", "papyra-trust-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "papyra-compact")
	testutil.CopyFile(t, testutil.Binary(t), bin)
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(base, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(base, "redis.pass")
	if err := os.WriteFile(pw, []byte("s3cret-in-a-file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(home, "compact.yaml")
	y := "state_dir: " + base + "/state\nlock_dir: " + base + "/lock\nquarantine_dir: " + base + "/q\nmetrics:\n  textfile: \"\"\n" +
		"targets:\n  - name: r\n    kind: redis\n    password_file: " + pw + "\n"
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	alice.Own(t, home, 0o755)
	alice.Own(t, cfg, 0o644)

	check := func(as *testutil.User) (int, string) {
		cmd := exec.Command(bin, "check", "--config", cfg)
		if as != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(as.UID), Gid: uint32(as.GID)}}
		}
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out)
	}
	code, out := check(&alice)
	if code != 0 || !strings.Contains(out, "OK, 1 target") {
		t.Errorf("as %s: got exit %d, want 0 (an unprivileged user may use their own file):\n%s", alice.Name, code, out)
	}
	code, out = check(nil)
	for _, want := range []string{
		home + " (mode 0755, owner " + alice.Name + ") can be changed by its owner " + alice.Name,
		cfg + " (mode 0644, owner " + alice.Name + ") can be changed by its owner " + alice.Name,
	} {
		if code != 2 || !strings.Contains(out, want) {
			t.Errorf("as root: got exit %d, want 2 and %q:\n%s", code, want, out)
		}
	}
	// Given to root, the file is used, with a warning about the secret.
	testutil.User{Name: "root"}.Own(t, home, 0o755)
	testutil.User{Name: "root"}.Own(t, cfg, 0o644)
	code, out = check(nil)
	if want := "warning: " + cfg + ":9: targets[0].password_file: is open to group or others (mode 0644)"; code != 0 || !strings.Contains(out, want) {
		t.Errorf("as root, root's file: got exit %d, want 0 and %q:\n%s", code, want, out)
	}
	if strings.Contains(out, "s3cret") {
		t.Errorf("check shows the password:\n%s", out)
	}
}
