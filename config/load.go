package config

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"

	"go.yaml.in/yaml/v3"
)

// Load reads and parses the configuration file at path; see ReadFile and
// Parse.
func Load(path string) (*Config, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// ReadFile reads the configuration file at path. Its errors are a
// *FieldError naming the file and wrapping ErrNoFile when the file does not
// exist (and fs.ErrNotExist), ErrUnreadable when it cannot be read.
//
// A privileged process (root, or any effective capability) also refuses a
// file that someone other than root could change, through the file or a
// directory on its path (see trust.go): each such problem is a *FieldError
// wrapping ErrUntrusted.
func ReadFile(path string) ([]byte, error) {
	return readFile(path, processTrust())
}

func readFile(path string, t trust) ([]byte, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &FieldError{File: path, Err: &problem{class: ErrNoFile, msg: "does not exist", cause: err}}
	case err != nil:
		return nil, &FieldError{File: path, Err: &problem{class: ErrUnreadable, msg: "cannot read: " + errText(err), cause: err}}
	}
	if t.privileged {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, &FieldError{File: path, Err: &problem{class: ErrUnreadable, msg: errText(err), cause: err}}
		}
		var errs []error
		for _, why := range t.untrusted(abs, false) {
			errs = append(errs, &FieldError{File: path, Err: newProblem(ErrUntrusted,
				"refused, as this process runs with privileges that whoever writes its configuration would steer: %s; only root may be able to change it", why)})
		}
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	return data, nil
}

// errText is err's message without the path an *fs.PathError repeats.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

// Parse decodes and validates data, read from file (used in messages and
// as Config.File). It starts from Default(), so an empty document yields
// the defaults. Validation reads the file system, without changing it, to
// refuse paths that meet (see checkPaths): two targets on one store, or a
// generated file on a store or in its rotation family. On success every max_age has been folded into
// max_age_seconds. Otherwise it returns a nil Config and every problem
// found, each a *FieldError, sorted by line and joined with errors.Join;
// the whole error prints one problem per line.
func Parse(file string, data []byte) (*Config, error) {
	return parse(file, data, processTrust())
}

func parse(file string, data []byte, t trust) (*Config, error) {
	r := newReport(file)
	cfg := Default()
	cfg.File = file
	if root := parseDocument(r, data); root != nil {
		d := decoder{r}
		d.decode(root, reflect.ValueOf(cfg).Elem(), "", root.Line)
	}
	for i := range cfg.Targets {
		cfg.Targets[i].Line = r.lines[indexPath("targets", i)]
	}
	validate(cfg, r)
	checkPaths(cfg, r)
	checkSecrets(cfg, r, t)
	if err := r.err(); err != nil {
		return nil, err
	}
	cfg.Warnings = r.warnings
	normalize(cfg)
	return cfg, nil
}

// parseDocument returns the root node of the one YAML document in data, or
// nil if there is none, or if it is null, or on a problem.
func parseDocument(r *report, data []byte) *yaml.Node {
	doc, extra, err := decodeDocuments(data)
	switch {
	case err != nil:
		syntaxError(r, data, err)
		return nil
	case extra != nil:
		r.add(extra.Line, "", "", newProblem(ErrInvalidValue,
			"a second YAML document; the file must hold exactly one"))
		return nil
	}
	if doc == nil || doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil
	}
	root := resolve(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil
	}
	return root
}

// decodeDocuments decodes the first YAML document of data and looks for a
// second: a plain Decode would ignore it, and an admin who wrote one meant
// it to count. doc is nil for an empty stream, extra nil when there is no
// second document.
func decodeDocuments(data []byte) (doc, extra *yaml.Node, err error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var first yaml.Node
	if err := dec.Decode(&first); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	var second yaml.Node
	switch err := dec.Decode(&second); {
	case errors.Is(err, io.EOF):
		return &first, nil, nil
	case err != nil:
		return nil, nil, err
	}
	return &first, &second, nil
}

// yamlErrorLine splits yaml.v3's "yaml: line 3: message" errors.
var yamlErrorLine = regexp.MustCompile(`(?s)^yaml: (?:line \d+: )?(.*)$`)

func syntaxError(r *report, data []byte, err error) {
	msg := err.Error()
	if m := yamlErrorLine.FindStringSubmatch(msg); m != nil {
		msg = m[1]
	}
	r.add(syntaxLine(data, err), "", "", &problem{class: ErrSyntax, msg: "invalid YAML: " + msg, cause: err})
}

// syntaxLine returns the line of data on which the syntax error err is.
//
// yaml.v3 does not say: the line in its message is that of the enclosing
// construct when the parser has one (the 0-based line of a mapping that
// started 20 lines earlier, for a bad indentation inside it), and the
// problem's own line only otherwise. Some errors (an unknown anchor, bad
// UTF-8) carry no line at all. The line is found instead as the shortest
// run of whole lines from the start of the file that fails exactly as the
// whole file does: a prefix that stops before the problem either parses or
// fails differently (at its end), and one that includes it fails the same
// way, because the scanner never looks past the end of the line it is on.
// An unclosed quote or bracket therefore points at the line it opens on.
// It costs a parse per halving, a dozen for a file of thousands of lines.
func syntaxLine(data []byte, err error) int {
	ends := lineEnds(data)
	failsSame := func(n int) bool {
		_, _, e := decodeDocuments(data[:ends[n-1]])
		return e != nil && e.Error() == err.Error()
	}
	// The whole file fails as err did; find the first prefix that does.
	lo, hi := 1, len(ends)
	for lo < hi {
		mid := lo + (hi-lo)/2
		if failsSame(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// lineEnds returns the offset just past each line of data, as YAML breaks
// lines (LF, CRLF or a lone CR); the last entry is len(data).
func lineEnds(data []byte) []int {
	var ends []int
	for i := 0; i < len(data); i++ {
		switch {
		case data[i] == '\n':
			ends = append(ends, i+1)
		case data[i] == '\r' && (i+1 == len(data) || data[i+1] != '\n'):
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	return ends
}
