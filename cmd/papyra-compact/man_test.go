package main

import (
	"bytes"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

func TestManpage(t *testing.T) {
	code, out, stderr := cli(t, "manpage", "--date", "2026-01-02")
	if code != 0 {
		t.Fatalf("manpage: exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, ".TH PAPYRA\\-COMPACT 1 \"2026\\-01\\-02\"") {
		t.Errorf("no .TH line with the date:\n%.300s", out)
	}
	// Every section of the manual is a .SH, in order.
	var want []string
	for _, l := range strings.Split(manual, "\n") {
		if l != "" && l[0] != ' ' {
			want = append(want, ".SH "+roffEscape(l))
		}
	}
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, ".SH ") {
			got = append(got, l)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("sections:\n got %q\nwant %q", got, want)
	}
	// Every option the manual lists is an item of its own.
	for _, opt := range regexp.MustCompile(`(?m)^    (--[a-z-]+)`).FindAllStringSubmatch(manual, -1) {
		if !strings.Contains(out, ".TP\n\\fB"+roffEscape(opt[1])) {
			t.Errorf("option %s is not a .TP item", opt[1])
		}
	}
	// No text line may start a roff request by accident.
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, ".") && !regexp.MustCompile(`^\.(\\"|TH|SH|PP|TP|nf|fi|nh|ad)( |$)`).MatchString(l) {
			t.Errorf("unexpected request line %q", l)
		}
	}
	// groff, when installed, must render it without a warning.
	if _, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command("groff", "-man", "-ww", "-z")
		cmd.Stdin = strings.NewReader(out)
		var msgs bytes.Buffer
		cmd.Stderr = &msgs
		if err := cmd.Run(); err != nil || msgs.Len() > 0 {
			t.Errorf("groff -man -ww: %v\n%s", err, msgs.String())
		}
	}
}

func TestManToRoff_Layout(t *testing.T) {
	text := "NAME\n    x - y\n\nFILES\n    /a/very/long/path/name some file\n    /b                     other\n" +
		"                           file\n    .hidden                a dot\n"
	got := manToRoff(text, "2026-01-02", "1.0")
	for _, want := range []string{
		".SH NAME\n.PP\nx \\- y\n",
		".TP\n\\fB/a/very/long/path/name\\fR\nsome file\n",
		".TP\n\\fB/b\\fR\nother file\n",
		".TP\n\\fB.hidden\\fR\na dot\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}
