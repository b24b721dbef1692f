package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentinels classifying every *FieldError, for errors.Is. The message of a
// FieldError is specific ("must be > 0"); the sentinel is the class.
var (
	// ErrSyntax: the file is not well-formed YAML.
	ErrSyntax = errors.New("invalid YAML")
	// ErrUnknownField: a mapping key that the schema does not have,
	// usually a typo. Rejected rather than ignored, so that a misspelt
	// limit never silently means "no limit".
	ErrUnknownField = errors.New("unknown field")
	// ErrWrongType: a value of the wrong YAML type, such as a string for
	// an integer or a mapping where a scalar is expected.
	ErrWrongType = errors.New("wrong type")
	// ErrInvalidValue: a value of the right type that is out of range or
	// not one of the accepted values.
	ErrInvalidValue = errors.New("invalid value")
	// ErrDuplicate: a key repeated in one mapping, or two targets with the
	// same name.
	ErrDuplicate = errors.New("duplicate")
	// ErrRequired: a mandatory field is missing or empty.
	ErrRequired = errors.New("required")
	// ErrRelativePath: a path that must be absolute is not.
	ErrRelativePath = errors.New("relative path")
	// ErrConflict: two fields that are mutually exclusive are both set.
	ErrConflict = errors.New("conflicting fields")
	// ErrNoFile: the configuration file does not exist.
	ErrNoFile = errors.New("no such file")
	// ErrUnreadable: the configuration file exists but cannot be read.
	ErrUnreadable = errors.New("unreadable file")
	// ErrUntrusted: a privileged process refuses a configuration or
	// password file that someone other than root (or the service user)
	// can change; ErrExposed warns of a secret others can read.
	ErrUntrusted = errors.New("untrusted file")
	ErrExposed   = errors.New("secret readable by others")
)

// FieldError is one problem in a configuration file. Load and Parse return
// all of them at once, joined with errors.Join and sorted by line.
type FieldError struct {
	// File is the path as given to Load or Parse; "" if unknown.
	File string
	// Line is the 1-based line of the offending key (for a missing
	// field, of the mapping that lacks it); 0 if unknown.
	Line int
	// Field is the path of the field, such as targets[0].retention.max_age;
	// "" for the document itself.
	Field string
	// Value is the offending value as it should be shown, or "" to show
	// none.
	Value string
	// Err says what is wrong. It wraps one of the Err* sentinels.
	Err error
}

// Error formats e as "file:line: field: message (got value)", leaving out
// the parts that are unknown or empty.
func (e *FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("invalid")
	}
	if e.Value != "" {
		fmt.Fprintf(&b, " (got %s)", e.Value)
	}
	return b.String()
}

// Unwrap returns e.Err, so errors.Is(e, ErrX) tests the class.
func (e *FieldError) Unwrap() error { return e.Err }

// problem is the Err of the FieldErrors this package creates: its text is
// the specific message and it unwraps to the sentinel (and to the original
// error, if one caused it). fmt.Errorf("%w: ...") would prefix every message
// with the sentinel's text, which says less than the message itself.
type problem struct {
	class error
	msg   string
	cause error
}

func (p *problem) Error() string { return p.msg }

func (p *problem) Unwrap() []error {
	if p.cause != nil {
		return []error{p.class, p.cause}
	}
	return []error{p.class}
}

func newProblem(class error, format string, args ...any) *problem {
	return &problem{class: class, msg: fmt.Sprintf(format, args...)}
}

// maxShown bounds how much of a value a message repeats: a stray base64
// blob should not fill the journal.
const maxShown = 64

// display returns s as a FieldError.Value should show it: as written when
// that is unambiguous, quoted when it is empty or contains blanks, quotes,
// parentheses or unprintable characters, and shortened when it is long.
func display(s string) string {
	s = shorten(s)
	ambiguous := s == "" || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r) || strings.ContainsRune(`"'()`, r)
	})
	if ambiguous {
		return strconv.Quote(s)
	}
	return s
}

// shorten cuts s to maxShown runes.
func shorten(s string) string {
	if utf8.RuneCountInString(s) > maxShown {
		return string([]rune(s)[:maxShown-1]) + "…"
	}
	return s
}
