package config_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/config"
)

// longFile returns a valid configuration of about n lines (targets of five
// lines each after a four-line header), for errors deep in a long file.
func longFile(n int) string {
	var b strings.Builder
	b.WriteString("state_dir: /s\nlock_dir: /l\nquarantine_dir: /q\ntargets:\n")
	for i := 0; strings.Count(b.String(), "\n")+5 <= n; i++ {
		fmt.Fprintf(&b, "  - name: t%d\n    kind: jsonl\n    path: /d/t%d\n    retention:\n      max_records: %d\n", i, i, i)
	}
	return b.String()
}

// TestParse_SyntaxErrorLine checks that a syntax error names the line the
// problem is on, whatever yaml.v3's own message says (it names the line of
// the enclosing construct, 0-based, when there is one). Each case names the
// expected line twice: as a number, and as a marker that the test finds in
// the file, so that a wrong expectation fails too.
func TestParse_SyntaxErrorLine(t *testing.T) {
	long := longFile(125) // lines 1-124, a valid file
	tests := []struct {
		name   string
		yaml   string
		line   int
		marker string // unique text on the expected line
	}{
		{"TabIndentsKey", "state_dir: /a\nmetrics:\n  textfile: /x\n\tfoo: 1\n", 4, "\tfoo"},
		{"TabAfterSpaces", "state_dir: /a\nlock_dir: /b\nmetrics:\n\ttextfile: /x\n", 4, "\ttextfile"},
		{"TabInTarget", "targets:\n  - name: a\n    kind: jsonl\n\t  path: /x\n", 4, "\t  path"},
		{"BadIndentInSequenceItem", "state_dir: /a\nlock_dir: /b\ntargets:\n  - name: a\n   kind: jsonl\n", 5, "   kind"},
		{"BadIndentOutdentedKey", "state_dir: /a\ndefaults:\n  retention:\n    max_records: 1\n   max_age: 1d\n", 5, "   max_age"},
		{"UnclosedDoubleQuote", "state_dir: /a\nlock_dir: \"/b\nquarantine_dir: /q\nmetrics:\n  textfile: /x\n", 2, `"/b`},
		{"UnclosedSingleQuote", "state_dir: /a\nlock_dir: /b\nquarantine_dir: '/q\n", 3, "'/q"},
		{"UnclosedFlowSequence", "state_dir: /a\ntargets: [a, b\nlock_dir: /b\n", 2, "[a, b"},
		{"UnclosedFlowMapping", "state_dir: /a\nlock_dir: /b\nmetrics: {textfile: /x\nquarantine_dir: /q\n", 3, "{textfile"},
		{"MappingValuesNotAllowed", "state_dir: /a\nlock_dir: /b: c\n", 2, "/b: c"},
		{"MissingColon", "state_dir: /a\nlock_dir /b\nquarantine_dir: /c\n", 2, "lock_dir /b"},
		{"InvalidAnchorName", "state_dir: /a\nlock_dir: & /b\n", 2, "& /b"},
		{"UnknownAlias", "state_dir: /a\nlock_dir: /b\nquarantine_dir: *nope\n", 3, "*nope"},
		{"BlockScalarLessIndented", "state_dir: /a\nlock_dir: |\n    x\n  y\nquarantine_dir: /q\n", 4, "  y"},
		{"BlockScalarBadHeader", "state_dir: /a\nlock_dir: |-2x\n  x\n", 2, "|-2x"},
		{"ControlCharacter", "state_dir: /a\nlock_dir: /b\nquarantine_dir: /q\x01\n", 3, "\x01"},
		{"InvalidUTF8", "state_dir: /a\nlock_dir: /b\x80\nquarantine_dir: /q\n", 2, "\x80"},
		{"CRLFLines", "state_dir: /a\r\nlock_dir: /b\r\ntargets:\r\n  - name: a\r\n   kind: jsonl\r\n", 5, "   kind"},
		{"DeepBadIndent", long + "  - name: last\n    kind: jsonl\n      path: /x\n", 127, "      path"},
		{"DeepTab", long + "  - name: last\n\tkind: jsonl\n", 126, "\tkind"},
		{"DeepUnclosedQuote", long + "  - name: \"last\n    kind: jsonl\n", 125, `"last`},
		// The target's mapping starts 23 lines above the problem.
		{"DeepBadIndentFarFromItsMapping", long + "  - name: last\n    kind: redis\n    addrs:\n" +
			strings.Repeat("      - h:6379\n", 20) + "   timeout: 1s\n", 148, "   timeout"},
		{"DeepSecondDocument", long + "---\nstate_dir: [\n", 126, "state_dir: ["},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The test's own expectation, checked against the file.
			lines := strings.Split(strings.ReplaceAll(tt.yaml, "\r\n", "\n"), "\n")
			if tt.line < 1 || tt.line > len(lines) || !strings.Contains(lines[tt.line-1], tt.marker) ||
				strings.Count(tt.yaml, tt.marker) != 1 {
				t.Fatalf("bad test: marker %q is not (once) on line %d", tt.marker, tt.line)
			}
			_, err := config.Parse(file, []byte(tt.yaml))
			var fe *config.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, config.ErrSyntax) {
				t.Fatalf("got %v, want a syntax *FieldError", err)
			}
			if fe.Line != tt.line {
				t.Errorf("got line %d (%v), want %d: %q", fe.Line, err, tt.line, lines[tt.line-1])
			}
			if want := fmt.Sprintf("%s:%d: invalid YAML: ", file, tt.line); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("got %q, want it to start with %q", err, want)
			}
			if regexp.MustCompile(`line \d`).MatchString(err.Error()) {
				t.Errorf("got %q: yaml.v3's own line number is misleading and must not be shown", err)
			}
		})
	}
}
