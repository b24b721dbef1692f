package config

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxProblems bounds one report. A file with more problems than this is not
// a configuration with typos, and aliases can multiply the problems of one
// anchored node far beyond the size of the file.
const maxProblems = 100

// report collects every problem of one file, from decoding and validation,
// so that Load can return them all at once.
type report struct {
	file string
	// lines maps a field path to the line of its key, or of its entry for
	// a sequence item, so validation can point at the offending key.
	lines map[string]int
	// failed holds the field paths whose value could not be decoded;
	// validation stays silent about them and everything below them, since
	// it would only repeat the decoding error as "required" or the like.
	failed    map[string]bool
	problems  []*FieldError
	truncated bool
	// warnings do not make the configuration invalid.
	warnings []*FieldError
}

func newReport(file string) *report {
	return &report{file: file, lines: map[string]int{}, failed: map[string]bool{}}
}

// add records a problem.
func (r *report) add(line int, field, value string, err error) {
	if len(r.problems) >= maxProblems {
		r.truncated = true
		return
	}
	r.problems = append(r.problems, &FieldError{File: r.file, Line: line, Field: field, Value: value, Err: err})
}

// fail records that the value of field could not be decoded.
func (r *report) fail(line int, field, value string, err error) {
	r.failed[field] = true
	r.add(line, field, value, err)
}

// check records a validation problem unless the value of field or of an
// enclosing field failed to decode.
func (r *report) check(line int, field, value string, err error) {
	for p := field; p != ""; p = parentPath(p) {
		if r.failed[p] {
			return
		}
	}
	r.add(line, field, value, err)
}

// line returns the line of field's key, or fallback when the file does not
// set the field.
func (r *report) line(field string, fallback int) int {
	if l, ok := r.lines[field]; ok {
		return l
	}
	return fallback
}

// err returns every problem, sorted by line, as one errors.Join error; nil
// if there is none.
func (r *report) err() error {
	if len(r.problems) == 0 {
		return nil
	}
	slices.SortStableFunc(r.problems, func(a, b *FieldError) int { return cmp.Compare(a.Line, b.Line) })
	errs := make([]error, 0, len(r.problems)+1)
	for _, p := range r.problems {
		errs = append(errs, p)
	}
	if r.truncated {
		errs = append(errs, &FieldError{File: r.file, Err: newProblem(ErrInvalidValue,
			"too many problems; only the first %d are shown", maxProblems)})
	}
	return errors.Join(errs...)
}

// decoder stores a yaml.Node tree into Go values by walking it against the
// yaml struct tags. yaml.v3's own strict mode (Decoder.KnownFields) is lost
// once the document is a yaml.Node, and it stops at the first problem and
// does not say which field a line belongs to; walking the tree ourselves
// gives every problem with its line and field path.
type decoder struct {
	*report
}

// decode stores n into v, the value at field path on the given line (that
// of its key). It reports whether n had a usable kind and type; when it did
// not, the problem is recorded and v is left unchanged. An explicit null
// sets v to its zero value: "unset".
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, line int) bool {
	if d.truncated {
		return false
	}
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		v.SetZero()
		return true
	}
	// A pointer is allocated before looking for yaml.Unmarshaler, since
	// *Duration implements it and must not be called through nil. Values
	// set in the file replace defaults whole rather than merging into them.
	if v.Kind() == reflect.Pointer {
		p := reflect.New(v.Type().Elem())
		if !d.decode(n, p.Elem(), path, line) {
			return false
		}
		v.Set(p)
		return true
	}
	if _, ok := v.Addr().Interface().(yaml.Unmarshaler); ok {
		return d.unmarshaler(n, v, path, line)
	}
	switch v.Kind() {
	case reflect.Struct:
		return d.mapping(n, v, path, line)
	case reflect.Slice:
		return d.sequence(n, v, path, line)
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return d.scalar(n, v, path, line)
	default:
		// A schema change this walker does not support yet: a bug, not
		// a user error.
		panic(fmt.Sprintf("config: field %s has unsupported type %s", path, v.Type()))
	}
}

// unmarshaler decodes n into v through v's UnmarshalYAML. A *FieldError
// from it (as Duration returns) gives the message and value; any other
// error counts as ErrInvalidValue.
func (d *decoder) unmarshaler(n *yaml.Node, v reflect.Value, path string, line int) bool {
	// Decode into a copy so that a failing UnmarshalYAML cannot leave a
	// half-set value behind.
	tmp := reflect.New(v.Type())
	tmp.Elem().Set(v)
	err := tmp.Interface().(yaml.Unmarshaler).UnmarshalYAML(n)
	if err == nil {
		v.Set(tmp.Elem())
		return true
	}
	value := ""
	var fe *FieldError
	if errors.As(err, &fe) {
		value, err = fe.Value, fe.Err
	}
	if !slices.ContainsFunc(sentinels, func(s error) bool { return errors.Is(err, s) }) {
		err = &problem{class: ErrInvalidValue, msg: err.Error(), cause: err}
	}
	d.fail(line, path, value, err)
	return false
}

// sentinels lists the classes a FieldError's Err must wrap.
var sentinels = []error{
	ErrSyntax, ErrUnknownField, ErrWrongType, ErrInvalidValue,
	ErrDuplicate, ErrRequired, ErrRelativePath, ErrConflict,
}

// mapping decodes a mapping node into the struct v, key by key, so that
// unknown and repeated keys are reported rather than ignored or
// overwritten. Fields the mapping does not name keep their current value,
// which is how Default() shows through.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string, line int) bool {
	if n.Kind != yaml.MappingNode {
		d.wrongType(n, path, line, "a mapping")
		return false
	}
	fields := yamlFields(v.Type())
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content) && !d.truncated; i += 2 {
		key, val := resolve(n.Content[i]), n.Content[i+1]
		if key.Kind != yaml.ScalarNode {
			d.add(key.Line, path, "", newProblem(ErrWrongType, "keys must be strings, not %s", kindName(key.Kind)))
			continue
		}
		field := joinPath(path, display(key.Value))
		if key.ShortTag() == "!!merge" {
			// Merge keys are shallow, so honouring them beside
			// Default() and validation would need rules of their own;
			// YAML 1.2 dropped them anyway. Plain aliases work.
			d.add(key.Line, field, "", newProblem(ErrUnknownField,
				"merge keys are not supported; repeat the fields or alias the whole value"))
			continue
		}
		if first, dup := seen[key.Value]; dup {
			d.add(key.Line, field, "", newProblem(ErrDuplicate, "duplicate key, first at line %d", first))
			continue
		}
		seen[key.Value] = key.Line
		index, ok := fields[key.Value]
		if !ok {
			d.add(key.Line, field, "", unknownField(key.Value, fields))
			continue
		}
		d.lines[field] = key.Line
		d.decode(val, v.Field(index), field, key.Line)
	}
	return true
}

// sequence decodes a sequence node into the slice v, replacing its
// contents.
func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string, line int) bool {
	if n.Kind != yaml.SequenceNode {
		d.wrongType(n, path, line, "a sequence")
		return false
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		field := indexPath(path, i)
		d.lines[field] = item.Line
		d.decode(item, s.Index(i), field, item.Line)
	}
	v.Set(s)
	return true
}

// scalar decodes a scalar node into v. It is stricter than yaml.v3, which
// truncates 1.5 to 1 for an integer field: numbers must be written as the
// field's type, integers being accepted as floats. Any scalar reads as a
// string, so that a name like 2024 needs no quotes.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string, line int) bool {
	want := scalarName(v.Kind())
	if n.Kind != yaml.ScalarNode {
		d.wrongType(n, path, line, want)
		return false
	}
	tag := n.ShortTag()
	var typeOK bool
	switch k := v.Kind(); {
	case k == reflect.String:
		typeOK = true
	case k == reflect.Bool:
		typeOK = tag == "!!bool"
	case k == reflect.Float32 || k == reflect.Float64:
		typeOK = tag == "!!float" || tag == "!!int"
	default:
		typeOK = tag == "!!int"
	}
	p := reflect.New(v.Type())
	if typeOK {
		typeOK = n.Decode(p.Interface()) == nil
	}
	if !typeOK {
		if isNumeric(v.Kind()) && looksInteger(n) {
			d.fail(line, path, displayNode(n), newProblem(ErrInvalidValue, "out of range"))
		} else {
			d.fail(line, path, displayNode(n), newProblem(ErrWrongType, "must be %s", want))
		}
		return false
	}
	v.Set(p.Elem())
	return true
}

func isNumeric(k reflect.Kind) bool {
	return k >= reflect.Int && k <= reflect.Float64
}

// looksInteger reports whether n is written as an integer. yaml.v3 tags one
// too large for an int64 as a float, which an integer field would then
// reject as a wrong type rather than as out of range.
func looksInteger(n *yaml.Node) bool {
	if n.ShortTag() == "!!int" {
		return true
	}
	digits := strings.TrimLeft(n.Value, "+-")
	return n.ShortTag() == "!!float" && digits != "" && strings.Trim(digits, "0123456789") == ""
}

func (d *decoder) wrongType(n *yaml.Node, path string, line int, want string) {
	if n.Kind == yaml.ScalarNode {
		d.fail(line, path, displayNode(n), newProblem(ErrWrongType, "must be %s", want))
		return
	}
	d.fail(line, path, "", newProblem(ErrWrongType, "must be %s, not %s", want, kindName(n.Kind)))
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// yamlFields maps the YAML names of t's fields to their indexes, as
// yaml.v3 names them: the tag's name, or the lowercased field name.
func yamlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") {
			panic(fmt.Sprintf("config: %s.%s: inline fields are not supported", t, f.Name))
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = i
	}
	return fields
}

// unknownField returns the problem for key, suggesting the closest field
// name when the key looks like a typo of it.
func unknownField(key string, fields map[string]int) error {
	const maxDistance = 2
	best, bestDistance := "", maxDistance+1
	if len(key) <= 2*maxShown {
		for name := range fields {
			dist := editDistance(strings.ToLower(key), name)
			if dist < bestDistance || dist == bestDistance && name < best {
				best, bestDistance = name, dist
			}
		}
	}
	if best == "" {
		return newProblem(ErrUnknownField, "unknown field")
	}
	return newProblem(ErrUnknownField, "unknown field; did you mean %s?", best)
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := range ra {
		cur[0] = i + 1
		for j := range rb {
			cost := 1
			if ra[i] == rb[j] {
				cost = 0
			}
			cur[j+1] = min(prev[j+1]+1, cur[j]+1, prev[j]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// parentPath returns the path of the field enclosing path: "targets[0]"
// for "targets[0].name", "targets" for "targets[0]", "" for "targets".
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
		return "a scalar"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	default:
		return "nothing"
	}
}

func scalarName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	default:
		return "a number"
	}
}

// displayNode shows a scalar as written: quoted if it was quoted in the
// file, so that `max_records: "10"` reads as a string in the message.
func displayNode(n *yaml.Node) string {
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		return strconv.Quote(shorten(n.Value))
	}
	return display(n.Value)
}
