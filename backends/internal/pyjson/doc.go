// Package pyjson classifies JSON-lines records exactly as Papyra's Python
// reader does, and measures them the way Papyra's retention does.
//
// Papyra (a Python actor framework) reads its JSON-lines stores in text mode
// with universal newlines, calls str.strip() on every line, skips blank
// lines, runs json.loads with the default decoder and keeps a line only if
// it parses to a dict (papyra-formats.md §1.5). Its max_total_bytes
// retention measures each record as len(repr(record).encode("utf-8")), the
// Python repr of the parsed dict, not its JSON text (§4.2). A compactor that
// runs next to a live Papyra must reproduce both decisions byte for byte.
//
// [Classifier.Classify] does that in one pass over the line, with no
// allocation per line in the steady state and no use of encoding/json. It
// emulates CPython 3.11:
//
//   - A single trailing '\r' (CRLF file) is removed. Any other raw '\r' would
//     end the line in Python's universal-newline mode, so the line is
//     reported as [Corrupt] with [ReasonCarriageReturn].
//   - Invalid UTF-8 anywhere in the line is [ReasonInvalidUTF8]: Python's
//     strict text-mode read would abort the whole file. It takes precedence
//     over every other reason.
//   - str.strip() removes the characters for which Python's str.isspace() is
//     true: \t \n \v \f \r \x1c-\x1f space \x85 \xa0 \u1680 \u2000-\u200a
//     \u2028 \u2029 \u202f \u205f \u3000 (not the BOM \ufeff). An empty
//     result is [Blank].
//   - json.loads: whitespace between tokens is only ' ', \t, \n, \r; NaN,
//     Infinity and -Infinity are accepted; raw control characters inside
//     strings are rejected; \uXXXX escapes may encode lone surrogates and an
//     escaped surrogate pair becomes one code point; a leading BOM and
//     trailing data are errors. An integer literal with more than 4300
//     digits makes CPython raise ValueError (the int_max_str_digits limit),
//     reported as [ReasonIntTooBig].
//   - Any depth is followed. A valid object nested deeper than the
//     classifier's maxDepth ([DefaultMaxDepth]) is [Unsure]: CPython
//     raises RecursionError near depth 1000, minus its caller's stack, so
//     whether Papyra reads it depends on its Python; an invalid one is
//     Corrupt for its syntax error, as at any depth. [Stream] classifies a
//     line given in pieces, of any length, in bounded memory (without the
//     repr size).
//   - A valid value that is not an object is [ReasonNotObject].
//   - The top-level "timestamp" key (compared by decoded value, last
//     duplicate wins) gives [Line.TS] and [Line.Value]; true and false count
//     as 1 and 0. A string, array or object timestamp would make Papyra's
//     age retention raise TypeError, so it is [ReasonBadTimestamp].
//
// When a line has several problems, the reason is chosen as Python would
// meet them: invalid UTF-8 first (the whole read fails), then a raw CR (the
// line is split before parsing), then the first error of a left-to-right
// parse (syntax or [ReasonIntTooBig]), then
// [ReasonNotObject], then [ReasonBadTimestamp].
//
// Two of the reasons make Papyra fail rather than skip: a bad timestamp
// raises TypeError in age retention, and an over-long integer raises
// ValueError, which the JSON backend skips (it catches Exception) but the
// rotating backend's reader does not (it catches only JSONDecodeError).
//
// When asked, Classify also returns [Line.ReprSize], the UTF-8 length of the
// Python repr of the parsed dict: ", " and ": " separators, single-quoted
// strings (double-quoted when they contain ' but no "), True/False/None,
// ints printed exactly ("-0" is 0), floats in Python's shortest repr
// ("1e+16", "1e-05", "100.0", "inf", "nan"), duplicate keys shown once, and
// characters that are not printable under Python 3.11's Unicode 14.0
// tables escaped as \xhh, \uhhhh or \Uhhhhhhhh. Go's unicode package is
// newer (15.0); unicode14.go lists the characters it assigns that 14.0 does
// not, and [IsPrintable] excludes them.
//
// The tests compare all of this with CPython 3.11 through goldens made by
// testdata/gen.py (golden.jsonl for single lines, store.json for the
// fixture stores, printable14.txt for str.isprintable). Regenerate them
// with "python3 testdata/gen.py", and unicode14.go with
// "go test -run TestGenerateUnicode14 . -args -gen-unicode14".
package pyjson
