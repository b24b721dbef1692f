package config

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestReadFile_Trust checks, with real users and modes, that a privileged
// process refuses a configuration file someone other than root can change
// (the file, a directory on its path, a symlink on the way or where it
// leads), and accepts one only root can, including through a sticky
// world-writable directory such as /tmp; and that an unprivileged one
// refuses nothing.
func TestReadFile_Trust(t *testing.T) {
	alice := testutil.NewUser(t)
	const yaml = "state_dir: /x\n"
	tests := []struct {
		name  string
		lay   func(tr *testutil.Tree) string // returns the path to read
		privs bool
		// want lists what each refusal names, one entry per problem;
		// none means the file is accepted.
		want []string
	}{
		{"RootOwned", func(tr *testutil.Tree) string {
			tr.Dir("etc", "root", 0o755)
			tr.File("etc/c.yaml", "root", yaml)
			return tr.P("etc/c.yaml")
		}, true, nil},
		{"RootGroupWritable", func(tr *testutil.Tree) string {
			tr.Dir("etc", "root", 0o775)
			tr.File("etc/c.yaml", "root", yaml)
			tr.Own("etc/c.yaml", "root", 0o664)
			return tr.P("etc/c.yaml")
		}, true, nil},
		{"FileOwnedByUser", func(tr *testutil.Tree) string {
			tr.Dir("etc", "root", 0o755)
			tr.File("etc/c.yaml", "alice", yaml)
			return tr.P("etc/c.yaml")
		}, true, []string{"c.yaml (mode 0600, owner alice) can be changed by its owner alice"}},
		{"FileGroupWritableByUsersGroup", func(tr *testutil.Tree) string {
			tr.Dir("etc", "root", 0o755)
			tr.File("etc/c.yaml", "root", yaml)
			chown(t, tr.P("etc/c.yaml"), 0, alice.GID, 0o664)
			return tr.P("etc/c.yaml")
		}, true, []string{"c.yaml (mode 0664, owner root) can be changed by group alice"}},
		{"FileWorldWritable", func(tr *testutil.Tree) string {
			tr.Dir("etc", "root", 0o755)
			tr.File("etc/c.yaml", "root", yaml)
			tr.Own("etc/c.yaml", "root", 0o646)
			return tr.P("etc/c.yaml")
		}, true, []string{"c.yaml (mode 0646, owner root) can be changed by every user"}},
		{"FileStickyBitDoesNotHelp", func(tr *testutil.Tree) string {
			tr.Dir("etc", "root", 0o755)
			tr.File("etc/c.yaml", "root", yaml)
			tr.Own("etc/c.yaml", "root", os.ModeSticky|0o666)
			return tr.P("etc/c.yaml")
		}, true, []string{"c.yaml (mode 1666, owner root) can be changed by every user"}},
		{"DirectoryOwnedByUser", func(tr *testutil.Tree) string {
			tr.Dir("etc", "alice", 0o755)
			tr.File("etc/c.yaml", "root", yaml)
			return tr.P("etc/c.yaml")
		}, true, []string{"etc (mode 0755, owner alice) can be changed by its owner alice"}},
		{"DirectoryAboveGroupWritable", func(tr *testutil.Tree) string {
			tr.Dir("srv", "root", 0o755)
			chown(t, tr.P("srv"), 0, alice.GID, 0o775)
			tr.Dir("srv/etc", "root", 0o755)
			tr.File("srv/etc/c.yaml", "root", yaml)
			return tr.P("srv/etc/c.yaml")
		}, true, []string{"srv (mode 0775, owner root) can be changed by group alice"}},
		{"DirectoryAboveWorldWritable", func(tr *testutil.Tree) string {
			tr.Dir("pub", "root", 0o777)
			tr.Dir("pub/etc", "root", 0o755)
			tr.File("pub/etc/c.yaml", "root", yaml)
			return tr.P("pub/etc/c.yaml")
		}, true, []string{"pub (mode 0777, owner root) can be changed by every user"}},
		{"StickyDirectoryRootEntry", func(tr *testutil.Tree) string {
			tr.Dir("tmp", "root", os.ModeSticky|0o777)
			tr.Dir("tmp/etc", "root", 0o755)
			tr.File("tmp/etc/c.yaml", "root", yaml)
			return tr.P("tmp/etc/c.yaml")
		}, true, nil},
		{"StickyDirectoryUsersEntry", func(tr *testutil.Tree) string {
			tr.Dir("tmp", "root", os.ModeSticky|0o777)
			tr.Dir("tmp/etc", "alice", 0o755)
			tr.File("tmp/etc/c.yaml", "root", yaml)
			return tr.P("tmp/etc/c.yaml")
		}, true, []string{"etc (mode 0755, owner alice) can be changed by its owner alice"}},
		{"SymlinkInUsersDirectory", func(tr *testutil.Tree) string {
			tr.Dir("etc", "root", 0o755)
			tr.File("etc/c.yaml", "root", yaml)
			tr.Dir("home", "alice", 0o755)
			tr.Link("home/c.yaml", tr.P("etc/c.yaml"), "root")
			return tr.P("home/c.yaml")
		}, true, []string{"home (mode 0755, owner alice) can be changed by its owner alice"}},
		{"SymlinkIntoUsersDirectory", func(tr *testutil.Tree) string {
			tr.Dir("etc", "root", 0o755)
			tr.Dir("home", "alice", 0o755)
			tr.File("home/c.yaml", "root", yaml)
			tr.Link("etc/c.yaml", "../home/c.yaml", "root")
			return tr.P("etc/c.yaml")
		}, true, []string{"home (mode 0755, owner alice) can be changed by its owner alice"}},
		{"UsersSymlinkInStickyDirectory", func(tr *testutil.Tree) string {
			tr.Dir("etc", "root", 0o755)
			tr.File("etc/c.yaml", "root", yaml)
			tr.Dir("tmp", "root", os.ModeSticky|0o777)
			tr.Link("tmp/c.yaml", tr.P("etc/c.yaml"), "alice")
			return tr.P("tmp/c.yaml")
		}, true, []string{"the symlink " + "{ROOT}/tmp/c.yaml belongs to alice"}},
		{"EachProblemReported", func(tr *testutil.Tree) string {
			tr.Dir("etc", "alice", 0o777)
			tr.File("etc/c.yaml", "alice", yaml)
			return tr.P("etc/c.yaml")
		}, true, []string{"etc (mode 0777, owner alice) can be changed by its owner alice and group alice and every user",
			"c.yaml (mode 0600, owner alice) can be changed by its owner alice"}},
		{"FileACLWritableByUser", func(tr *testutil.Tree) string {
			tr.Dir("etc", "root", 0o755)
			tr.File("etc/c.yaml", "root", yaml)
			setfacl(t, "u:"+alice.Name+":rw", tr.P("etc/c.yaml"))
			return tr.P("etc/c.yaml")
		}, true, []string{"c.yaml (mode 0660, owner root) can be changed by user alice (ACL)"}},
		{"DirectoryACLWritableByGroup", func(tr *testutil.Tree) string {
			tr.Dir("etc", "root", 0o755)
			tr.File("etc/c.yaml", "root", yaml)
			setfacl(t, "g:"+alice.Name+":rwx", tr.P("etc"))
			return tr.P("etc/c.yaml")
		}, true, []string{"etc (mode 0775, owner root) can be changed by group alice (ACL)"}},
		{"FileACLMaskedOrReadOnly", func(tr *testutil.Tree) string {
			tr.Dir("etc", "root", 0o755)
			tr.File("etc/c.yaml", "root", yaml)
			setfacl(t, "u:"+alice.Name+":r,g:"+alice.Name+":rw,m::r", tr.P("etc/c.yaml"))
			return tr.P("etc/c.yaml")
		}, true, nil},
		{"UnprivilegedRefusesNothing", func(tr *testutil.Tree) string {
			tr.Dir("etc", "alice", 0o777)
			tr.File("etc/c.yaml", "alice", yaml)
			return tr.P("etc/c.yaml")
		}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := testutil.NewTree(t, map[string]testutil.User{"alice": alice})
			path := tt.lay(tr)
			_, err := readFile(path, trust{privileged: tt.privs})
			var errs []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			} else if err != nil {
				errs = []error{err}
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d problems (%v), want %d: %q", len(errs), err, len(tt.want), tt.want)
			}
			for i, e := range errs {
				want := strings.ReplaceAll(strings.ReplaceAll(tt.want[i], "alice", alice.Name), "{ROOT}", tr.Root)
				var fe *FieldError
				if !errors.As(e, &fe) || fe.File != path || !errors.Is(e, ErrUntrusted) || !strings.Contains(e.Error(), want) {
					t.Errorf("problem %d: got %v, want an ErrUntrusted *FieldError for %s containing %q", i, e, path, want)
				}
			}
		})
	}
}

func chown(t *testing.T, path string, uid, gid int, mode os.FileMode) {
	t.Helper()
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestParse_PasswordFileTrust checks the password_file rules: a privileged
// process refuses one that someone other than root or the service user
// can change, and any process warns of one group or others can read.
func TestParse_PasswordFileTrust(t *testing.T) {
	alice, svc := testutil.NewUser(t), testutil.NewUser(t)
	users := map[string]testutil.User{"alice": alice, "svc": svc}
	tests := []struct {
		name    string
		lay     func(tr *testutil.Tree)
		mode    os.FileMode
		privs   bool
		refused string // what the refusal names; "" for none
		warning string // what the warning says; "" for none
	}{
		{"Root0600", func(tr *testutil.Tree) { tr.File("d/pw", "root", "s3cret\n") }, 0o600, true, "", ""},
		{"ServiceUser0600", func(tr *testutil.Tree) { tr.File("d/pw", "svc", "s3cret\n") }, 0o600, true, "", ""},
		{"ServiceUsersDirectory", func(tr *testutil.Tree) {
			tr.Own("d", "svc", 0o700)
			tr.File("d/pw", "svc", "s3cret\n")
		}, 0o600, true, "", ""},
		{"OtherUser", func(tr *testutil.Tree) { tr.File("d/pw", "alice", "s3cret\n") }, 0o600, true, "pw (mode 0600, owner alice) can be changed by its owner alice", ""},
		{"OtherUsersDirectory", func(tr *testutil.Tree) {
			tr.Own("d", "alice", 0o755)
			tr.File("d/pw", "root", "s3cret\n")
		}, 0o600, true, "d (mode 0755, owner alice) can be changed by its owner alice", ""},
		{"WorldWritable", func(tr *testutil.Tree) { tr.File("d/pw", "root", "s3cret\n") }, 0o666, true, "pw (mode 0666, owner root) can be changed by every user", "is open to group or others (mode 0666)"},
		{"GroupReadable", func(tr *testutil.Tree) { tr.File("d/pw", "root", "s3cret\n") }, 0o640, true, "", "is open to group or others (mode 0640)"},
		{"GroupWritable", func(tr *testutil.Tree) { tr.File("d/pw", "root", "s3cret\n") }, 0o620, true, "", "is open to group or others (mode 0620)"},
		{"OthersExecute", func(tr *testutil.Tree) { tr.File("d/pw", "root", "s3cret\n") }, 0o601, false, "", "is open to group or others (mode 0601)"},
		{"Missing", func(tr *testutil.Tree) {}, 0, false, "", "does not exist"},
		{"WorldReadableUnprivileged", func(tr *testutil.Tree) { tr.File("d/pw", "alice", "s3cret\n") }, 0o644, false, "", "is open to group or others (mode 0644)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := testutil.NewTree(t, users)
			tr.Dir("d", "root", 0o755)
			tt.lay(tr)
			if tt.mode != 0 {
				if err := os.Chmod(tr.P("d/pw"), tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			y := "targets:\n  - name: r\n    kind: redis\n    password_file: " + tr.P("d/pw") + "\n"
			cfg, err := parse("c.yaml", []byte(y), trust{privileged: tt.privs, service: []uint32{uint32(svc.UID)}})
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				if got := len(cfg.Warnings) > 0; got != (tt.warning != "") {
					t.Errorf("warned: got %v (%v), want %q", got, cfg.Warnings, tt.warning)
				}
				for _, w := range cfg.Warnings {
					if !errors.Is(w, ErrExposed) || w.Line != 4 || w.Field != "targets[0].password_file" || tt.warning == "" || !strings.Contains(w.Error(), tt.warning) {
						t.Errorf("warning: got %v, want an ErrExposed at line 4, targets[0].password_file, saying %q", w, tt.warning)
					}
				}
				return
			}
			want := strings.ReplaceAll(tt.refused, "alice", alice.Name)
			if err == nil {
				t.Fatalf("got no error, want an ErrUntrusted containing %q", want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrUntrusted) || fe.Line != 4 || fe.Field != "targets[0].password_file" || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want an ErrUntrusted at line 4, targets[0].password_file, containing %q", err, want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

// TestProcessTrust checks the privilege detection of the process the
// tests run as (root in CI).
func TestProcessTrust(t *testing.T) {
	if os.Geteuid() != 0 {
		testutil.SkipOrFail(t, "needs root")
	}
	if !processTrust().privileged {
		t.Errorf("root: got unprivileged")
	}
	if effectiveCaps() == 0 {
		t.Errorf("root: CapEff is 0")
	}
}

// setfacl sets an access ACL with the real tool (make deps installs it).
func setfacl(t *testing.T, spec, path string) {
	t.Helper()
	bin, err := exec.LookPath("setfacl")
	if err != nil {
		testutil.SkipOrFail(t, "setfacl not installed (make deps installs acl): %v", err)
	}
	if out, err := exec.Command(bin, "-m", spec, path).CombinedOutput(); err != nil {
		t.Fatalf("setfacl -m %s %s: %v\n%s", spec, path, err, out)
	}
}
