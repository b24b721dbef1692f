package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Load reads and parses the configuration file at path; see Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates data, read from file (used in messages and
// as Config.File). It starts from Default(), so an empty document yields
// the defaults. On success every max_age has been folded into
// max_age_seconds. Otherwise it returns a nil Config and every problem
// found, each a *FieldError, sorted by line and joined with errors.Join;
// the whole error prints one problem per line.
func Parse(file string, data []byte) (*Config, error) {
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
	if err := r.err(); err != nil {
		return nil, err
	}
	normalize(cfg)
	return cfg, nil
}

// parseDocument returns the root node of the one YAML document in data, or
// nil if there is none, or if it is null, or on a problem.
func parseDocument(r *report, data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			syntaxError(r, err)
		}
		return nil
	}
	// A second document would be ignored by a plain Decode; an admin who
	// wrote one meant it to count.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		syntaxError(r, err)
		return nil
	default:
		r.add(extra.Line, "", "", newProblem(ErrInvalidValue,
			"a second YAML document; the file must hold exactly one"))
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil
	}
	root := resolve(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil
	}
	return root
}

// yamlErrorLine splits yaml.v3's "yaml: line 3: message" errors, the only
// form in which it reports where a syntax error is.
var yamlErrorLine = regexp.MustCompile(`(?s)^yaml: (?:line (\d+): )?(.*)$`)

func syntaxError(r *report, err error) {
	line, msg := 0, err.Error()
	if m := yamlErrorLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1]) // "" (no line) gives 0
		msg = m[2]
	}
	r.add(line, "", "", &problem{class: ErrSyntax, msg: "invalid YAML: " + msg, cause: err})
}
