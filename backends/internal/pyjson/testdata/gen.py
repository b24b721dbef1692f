#!/usr/bin/env python3
"""Generate the differential goldens for package pyjson.

Run with CPython 3.11 (unicodedata 14.0), from any directory:

    python3 backends/internal/pyjson/testdata/gen.py

It writes, next to this script:

  golden.jsonl     one JSON object per test line: name, line (base64 of the
                   raw bytes, without the '\\n'), class, reason, ts_kind, ts
                   (repr of the float timestamp), size (len(repr(dict)
                   .encode()) when the line parses to a dict, else -1).
  store.json       counts and the total repr size of the fixture stores, as
                   Papyra's reader sees them.
  printable14.txt  the ranges of code points for which str.isprintable() is
                   true, one "lo hi" (hex, inclusive) per line.

The verdicts emulate Papyra's reader (papyra-formats.md §1.5) plus the
rules that papyra-compact adds on top (a raw CR other than a CRLF's is
reported; a valid object nested deeper than MAX_DEPTH is "Unsure": the
classifier follows any depth, but whether Papyra's CPython reads it
depends on its version and call stack).
"""

import base64
import json
import math
import os
import random
import struct
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", "..", ".."))
MAX_DEPTH = 900  # pyjson.DefaultMaxDepth

# Parse at any depth, as the classifier does.
sys.setrecursionlimit(100000)

assert sys.version_info[:2] == (3, 11), "run with CPython 3.11"
assert unicodedata.unidata_version == "14.0.0"


# --------------------------------------------------------------------------
# The reference: what Papyra's reader makes of one line.


def prefix_depth(t, end):
    """Deepest nesting reached in t[:end], outside strings."""
    depth = best = 0
    in_str = esc = False
    for ch in t[:end]:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth -= 1
    return best


def big_int_pos(t):
    """Index of the first integer literal of over 4300 digits, outside strings."""
    in_str = esc = False
    i = 0
    while i < len(t):
        ch = t[i]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            i += 1
            continue
        if ch == '"':
            in_str = True
            i += 1
            continue
        if ch in "0123456789":
            j = i
            while j < len(t) and t[j] in "0123456789":
                j += 1
            if j - i > 4300 and not (j < len(t) and t[j] in ".eE"):
                return i
            i = j
            continue
        i += 1
    return len(t)


def value_depth(o):
    best = 0
    stack = [(o, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (list, dict)):
            best = max(best, d)
            for x in v.values() if isinstance(v, dict) else v:
                stack.append((x, d + 1))
    return best


def classify(raw):
    v = {"class": "Corrupt", "reason": "", "ts_kind": "Missing", "ts": "", "size": -1}
    line = raw[:-1] if raw.endswith(b"\r") else raw
    try:
        s = line.decode("utf-8")
    except UnicodeDecodeError:
        v["reason"] = "InvalidUTF8"
        return v
    if "\r" in s:
        v["reason"] = "CarriageReturn"
        return v
    t = s.strip()
    if not t:
        v["class"] = "Blank"
        return v
    try:
        obj = json.loads(t)
    except json.JSONDecodeError as e:
        v["reason"] = "InvalidJSON"
        return v
    except ValueError:  # int_max_str_digits
        v["reason"] = "IntTooBig"
        return v
    if not isinstance(obj, dict):
        v["reason"] = "NotObject"
        return v
    deep = value_depth(obj) > MAX_DEPTH
    if not deep:  # the classifier measures only what it is sure of
        v["size"] = len(repr(obj).encode("utf-8"))
    if "timestamp" in obj:
        ts = obj["timestamp"]
        if ts is None:
            v["ts_kind"] = "Null"
        elif isinstance(ts, (bool, int, float)):
            v["ts_kind"] = "Number"
            try:
                f = float(ts)
            except OverflowError:
                f = math.inf if ts > 0 else -math.inf
            v["ts"] = repr(f)
        else:
            v["reason"] = "BadTimestamp"
            return v
    v["class"] = "Unsure" if deep else "Record"
    return v


# --------------------------------------------------------------------------
# Hand-written cases.

CASES = []


def add(name, raw):
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    assert b"\n" not in raw, name
    CASES.append((name, raw))


# Blank lines and Python whitespace.
add("empty", b"")
add("space", b" ")
add("tab", b"\t")
add("vt_ff", b"\x0b\x0c")
add("fs_gs_rs_us", b"\x1c\x1d\x1e\x1f")
add("crlf_only", b"\r")
add("spaces_crlf", b"   \r")
add("ideographic_space", "\u3000")
add("nbsp_nel", "\xa0 \x85")
add("line_para_sep", "\u2028\u2029")
add("unicode_spaces", "\u200a\u2000\u1680\u202f\u205f\u2001\u2005")
add("zwsp_not_space", "\u200b")
add("mongolian_vs_not_space", "\u180e")
add("bom_only", "\ufeff")
add("cr_between_spaces", b" \r ")

# Stripping around a record.
add("strip_vt_ff", b'\x0b\x0c{"a": 1}\x1c\x1f')
add("strip_unicode", '\u3000\xa0{"a": 1}\u2028\x85')
add("strip_then_crlf", b'  {"a": 1}  \r')
add("bom_record", '\ufeff{"a": 1}')
add("zwsp_record", '\u200b{"a": 1}')
add("vt_between_tokens", b'{"a":\x0b1}')
add("ff_between_tokens", b'{"a": 1,\x0c"b": 2}')
add("nbsp_between_tokens", '{"a":\xa01}')
add("ws_variants", b'{ "a" : 1 ,\t"b" :[ 1 ,2 ] , "c":{ } }')
add("no_ws", b'{"a":1,"b":[1,2],"c":{}}')

# Carriage returns.
add("cr_cr", b'{"a": 1}\r\r')
add("cr_leading", b'\r{"a": 1}')
add("cr_between_tokens", b'{"a":\r1}')
add("cr_in_string", b'{"a": "x\ry"}')
add("cr_then_invalid_utf8", b'{"a": "\r\xff"}')
add("cr_two_records", b'{"a": 1}\r{"b": 2}')

# Invalid UTF-8.
add("utf8_ff_in_string", b'{"a": "\xff"}')
add("utf8_ff_alone", b"\xff")
add("utf8_after_object", b'{"a": 1}\xff')
add("utf8_truncated_tail", b'{"a": 1} \xc3')
add("utf8_encoded_surrogate", b'{"a": "\xed\xa0\x80"}')
add("utf8_overlong", b'{"a": "\xc0\xaf"}')
add("utf8_above_max", b'{"a": "\xf4\x90\x80\x80"}')
add("utf8_truncated_3byte", b'{"a": "\xe2\x82"}')
add("utf8_bad_in_key", b'{"\x80": 1}')
add("utf8_bad_after_syntax_error", b'{"a": } \xfe')
add("utf8_latin1_line", b'{"a": "caf\xe9"}')

# Literals and numbers.
add("nan_inf", b'{"a": NaN, "b": Infinity, "c": -Infinity}')
add("nan_lower", b'{"a": nan}')
add("neg_nan", b'{"a": -NaN}')
add("plus_one", b'{"a": +1}')
add("dot_five", b'{"a": .5}')
add("one_dot", b'{"a": 1.}')
add("one_e", b'{"a": 1e}')
add("one_e_plus", b'{"a": 1e+}')
add("leading_zero", b'{"a": 01}')
add("minus_alone", b'{"a": -}')
add("minus_zero_int", b'{"a": -0}')
add("minus_zero_float", b'{"a": -0.0}')
add("zero_exp", b'{"a": 0e0, "b": 0E-0, "c": -0e5}')
add("exp_forms", b'{"a": 1E+2, "b": 1e-7, "c": 1e16, "d": 1e15, "e": 1.5e16, "f": 0.0001, "g": 0.00001}')
add("repr_boundaries", b'{"a": 1234567890123456.0, "b": 12345678901234567.0, "c": 9999999999999998.0, "d": 0.001, "e": 123e-7}')
add("long_mantissa", b'{"a": 0.10000000000000001, "b": 1.00000000000000000000001, "c": 12345678901234567890.0}')
add("overflow", b'{"a": 1e400, "b": -1e400, "c": 1e-400, "d": -1e-400}')
add("subnormal", b'{"a": 5e-324, "b": 2.2250738585072014e-308, "c": 1.7976931348623157e308, "d": 4.9e-324}')
add("int_4300", '{"a": %s}' % ("7" * 4300))
add("int_4301", '{"a": %s}' % ("7" * 4301))
add("neg_int_4300", '{"a": -%s}' % ("1" * 4300))
add("neg_int_4301", '{"a": -%s}' % ("1" * 4301))
add("float_5000_digits", '{"a": %s.5}' % ("1" * 5000))
add("float_5000_exp", '{"a": %se-5000}' % ("3" * 5000))
add("big_int_then_bad_syntax", '{"a": %s, }' % ("9" * 4301))
add("big_int_in_ts", '{"timestamp": %s}' % ("9" * 4301))
add("literals", b'{"t": true, "f": false, "n": null}')
add("bad_literals", b'{"t": tru}')
add("bad_literal_case", b'{"t": True}')
add("infinity_prefix", b'{"t": Infinit}')

# Strings.
add("escapes_short", b'{"a": "\\" \\\\ \\/ \\b \\f \\n \\r \\t"}')
add("escape_u_lower_upper", b'{"a": "\\u00e9\\u00E9\\u00C9"}')
add("surrogate_pair", b'{"a": "\\ud83d\\ude00"}')
add("surrogate_pair_upper", b'{"a": "\\uD83D\\uDE00"}')
add("lone_high", b'{"a": "\\ud83d"}')
add("lone_low", b'{"a": "\\ude00"}')
add("low_then_high", b'{"a": "\\ude00\\ud83d"}')
add("high_then_ascii_escape", b'{"a": "\\ud83d\\u0041"}')
add("high_then_char", b'{"a": "\\ud83dx"}')
add("high_then_bad_escape", b'{"a": "\\ud83d\\uzzzz"}')
add("high_high_low", b'{"a": "\\ud83d\\ud83d\\ude00"}')
add("bad_escape_x", b'{"a": "\\x41"}')
add("bad_escape_short_u", b'{"a": "\\u12"}')
add("bad_escape_hex", b'{"a": "\\u12G4"}')
add("bad_escape_big_u", b'{"a": "\\U0001F600"}')
add("raw_tab_in_string", b'{"a": "x\ty"}')
add("raw_us_in_string", b'{"a": "x\x1fy"}')
add("raw_del", b'{"a": "x\x7fy"}')
add("raw_nel", '{"a": "x\x85y"}')
add("escaped_controls", b'{"a": "\\u0000\\u0001\\u001f\\u007f\\u0080\\u009f\\u00a0\\u00ad\\u00ff"}')
add("unicode15_chars", '{"a": "\U0001fae8\U0001f6dc\u0cf3\U00031350 \U0001e4d0"}')
add("unicode14_chars", '{"a": "\U0001fae0\U0001f6dd\U00011f00"}')
add("format_chars", '{"a": "\u200b\ufeff\u00ad\u2060\U000e0001"}')
add("private_use", '{"a": "\ue000\U000f0000\U0010fffd"}')
add("noncharacters", '{"a": "\ufffe\uffff\U0010ffff"}')
add("zs_chars", '{"a": "\xa0\u3000\u2000\u1680 "}')
add("line_sep_in_string", '{"a": "\u2028\u2029"}')
add("cjk_emoji", '{"a": "\u4e2d\u6587 \U0001f600 \u00e9\u00e8"}')
add("quotes_single", b'{"a": "it\'s"}')
add("quotes_double", b'{"a": "say \\"hi\\""}')
add("quotes_both", b'{"a": "it\'s \\"x\\""}')
add("quotes_escaped_single", b'{"a": "\\u0027\\u0027"}')
add("quotes_escaped_both", b'{"a": "\\u0027\\u0022"}')
add("backslashes", b'{"a": "\\\\\\\\"}')
add("unterminated_string", b'{"a": "abc')
add("string_key_only", b'{"a')

# Keys and duplicates.
add("dup_simple", b'{"a": 1, "b": 2, "a": 3}')
add("dup_escaped", b'{"a": 1, "\\u0061": "long string value"}')
add("dup_nested", b'{"x": {"k": 1, "k": [1, 2, 3]}, "y": [{"z": 1, "z": null}]}')
add("dup_surrogate_same", b'{"\\ud800": 1, "\\ud800": 22}')
add("dup_surrogate_diff", b'{"\\ud800": 1, "\\ud801": 22}')
add("dup_pair_vs_raw", '{"\\ud83d\\ude00": 1, "\U0001f600": 333}')
add("dup_nonascii_escaped", '{"\u00e9": 1, "\\u00e9": 4444}')
add("dup_many", "{" + ", ".join('"k%d": %d' % (i % 7, i) for i in range(40)) + "}")
add("dup_big_object", "{" + ", ".join('"key%d": "%s"' % (i % 50, "v" * (i % 13)) for i in range(200)) + "}")
add("dup_big_escaped", "{" + ", ".join('"\\u006b%d": %d' % (i, i) for i in range(30)) + ", "
    + ", ".join('"k%d": [%d]' % (i, i) for i in range(30)) + "}")
add("keys_empty", b'{"": 1, "": 2}')
add("key_not_string", b'{1: 2}')
add("key_single_quoted", b"{'a': 1}")
add("trailing_comma_obj", b'{"a": 1,}')
add("trailing_comma_arr", b'{"a": [1,]}')
add("missing_colon", b'{"a" 1}')
add("missing_value", b'{"a":}')
add("missing_comma", b'{"a": 1 "b": 2}')
add("unclosed", b'{"a": 1')
add("open_brace", b"{")
add("close_only", b"}")
add("trailing_data", b'{"a": 1} x')
add("two_objects", b'{"a": 1}{}')
add("trailing_comma_top", b'{"a": 1},')
add("empty_object", b"{}")
add("empty_object_ws", b"{ \t }")
add("empty_array_in_obj", b'{"a": [ ], "b": {\t}}')

# Not objects.
for i, t in enumerate([b"[1, 2, 3]", b'"str"', b"1", b"null", b"true", b"NaN", b"-Infinity", b"[]", b"1.5", b'"{}"']):
    add("not_object_%d" % i, t)

# Timestamps.
for i, t in enumerate([b"null", b"1", b"1.5", b"true", b"false", b'"x"', b"[]", b"{}", b"NaN", b"Infinity",
                       b"-Infinity", b"1e400", b"-1e400", b"123456789012345678901234567890", b"-0", b"-0.0",
                       b"1795000000.123456", b"[1]", b'{"a": 1}', b'""', b"9007199254740993"]):
    add("ts_%d" % i, b'{"kind": "event", "timestamp": ' + t + b'}')
add("ts_dup_last_number", b'{"timestamp": "x", "a": 1, "timestamp": 2.5}')
add("ts_dup_last_string", b'{"timestamp": 2.5, "timestamp": "x"}')
add("ts_dup_last_null", b'{"timestamp": 2.5, "timestamp": null}')
add("ts_escaped_key", b'{"time\\u0073tamp": 7}')
add("ts_escaped_key_string", b'{"\\u0074imestamp": "7"}')
add("ts_capital", b'{"Timestamp": "x"}')
add("ts_nested_string", b'{"payload": {"timestamp": "x"}, "timestamp": 3}')
add("ts_in_list", b'[{"timestamp": 1}]')
add("ts_with_space_key", b'{"timestamp ": "x"}')
add("ts_bad_but_invalid", b'{"timestamp": "x", }')

# Depth.
add("depth_512_arrays", "[" * 512 + "]" * 512)
add("depth_512_in_object", '{"a": ' + "[" * 511 + "]" * 511 + "}")
add("depth_513_in_object", '{"a": ' + "[" * 512 + "]" * 512 + "}")
add("depth_513_objects", '{"a": ' * 513 + "1" + "}" * 513)
add("depth_512_objects", '{"a": ' * 512 + "1" + "}" * 512)
add("depth_600_then_garbage", "[" * 600 + "x")
add("depth_1000", "[" * 1000 + "]" * 1000)
add("depth_100_then_garbage", "[" * 100 + "x")
add("depth_600_after_error", '{"a": x' + "[" * 600)
add("depth_900_objects", '{"a": ' * 900 + "1" + "}" * 900)
add("depth_901_objects", '{"a": ' * 901 + "1" + "}" * 901)
add("depth_980_with_ts", '{"timestamp": 5, "x": ' + "[" * 979 + "]" * 979 + "}")
add("depth_2000_with_ts_last", '{"x": ' + "[" * 1999 + "]" * 1999 + ', "timestamp": 1.5e9, "timestamp": null}')
add("depth_2000_bad_ts", '{"timestamp": "x", "x": ' + "[" * 1999 + "]" * 1999 + "}")
add("depth_2000_not_object", "[" * 2000 + "]" * 2000)
add("depth_2000_then_garbage", '{"x": ' + "[" * 1999 + "]" * 1998 + "}}")
add("depth_2000_big_int", '{"x": ' + "[" * 1999 + "1" * 4301 + "]" * 1999 + "}")
add("depth_2000_invalid_utf8", b'{"x": ' + b"[" * 1999 + b'"\xff"' + b"]" * 1999 + b"}")
add("depth_2000_ws_padded", "\u3000 \x0b" + '{"x": ' + "[" * 1999 + "]" * 1999 + "}" + "\x1c\u2029")
add("depth_2000_escaped_ts_key", '{"\\u0074imestamp": Infinity, "x": ' + "[" * 1999 + "]" * 1999 + "}")

# Realistic Papyra lines (§1.3).
add("papyra_event", '{"kind": "event", "system_id": "local", "actor_address": {"system": "local", "actor_id": 1}, '
    '"event_type": "ActorStarted", "payload": {"s": "\u00e9"}, "timestamp": 1795526626.465053}')
add("papyra_audit", '{"kind": "audit", "system_id": "local", "timestamp": 2.5, "total_actors": 1, "alive_actors": 1, '
    '"stopping_actors": 0, "restarting_actors": 0, "registry_size": 1, "registry_orphans": ["x"], '
    '"registry_dead": [], "dead_letters_count": 0}')
add("papyra_dead_letter", '{"kind": "dead_letter", "system_id": "local", "target": {"system": "local", "actor_id": 2}, '
    '"message_type": "str", "payload": "late", "timestamp": 3}')
add("papyra_rotating", '{"system_id": "local", "actor_address": {"system": "local", "actor_id": 2}, '
    '"event_type": "ActorStarted", "payload": {"i": 2, "s": "\\u00e9"}, "timestamp": 2.0, "kind": "event"}')
add("papyra_ref_target", '{"kind": "dead_letter", "system_id": "local", "target": {"_rid": 1, '
    '"_mailbox_put": "<bound method Mailbox.put of <papyra.mailbox.Mailbox object at 0x7f3a2c1b2d90>>", '
    '"_is_alive": "<function ActorSystem._is_alive at 0x7f3a2c1b3e20>", "_address": {"system": "local", "actor_id": 3}}, '
    '"message_type": "str", "payload": "<PapyraStop>", "timestamp": 1795000001.25}')


# --------------------------------------------------------------------------
# Random cases.

rng = random.Random(20260226)

UNICODE15 = [0x0CF3, 0x0ECE, 0x10EFD, 0x1123F, 0x11B00, 0x11F00, 0x11F3E, 0x1342F, 0x13440, 0x1B132, 0x1D2C0,
             0x1DF25, 0x1E030, 0x1E4D0, 0x1F6DC, 0x1F774, 0x1FA75, 0x1FAE8, 0x2B739, 0x31350, 0x323AF]
SPECIAL = [0x27, 0x22, 0x5C, 0x2F, 0x7F, 0x85, 0xA0, 0xAD, 0xFF, 0x2028, 0x2029, 0xFEFF, 0x3000, 0x200B, 0xFFFD,
           0xFFFE, 0x10FFFF, 0xE000, 0x1F600, 0x0301, 0x061C, 0x180E, 0x2060]


def rand_cp():
    k = rng.random()
    if k < 0.45:
        return rng.randint(0x20, 0x7E)
    if k < 0.52:
        return rng.randint(0, 0x1F)
    if k < 0.60:
        return rng.randint(0x80, 0xFF)
    if k < 0.72:
        while True:
            c = rng.randint(0x100, 0xFFFF)
            if not 0xD800 <= c < 0xE000:
                return c
    if k < 0.80:
        return rng.randint(0x10000, 0x10FFFF)
    if k < 0.85:
        return rng.randint(0xD800, 0xDFFF)  # escaped only
    if k < 0.92:
        return rng.choice(UNICODE15)
    return rng.choice(SPECIAL)


def hex4(c):
    h = "%04x" % c
    return "".join(ch.upper() if rng.random() < 0.3 else ch for ch in h)


def enc_char(c):
    """JSON text for code point c inside a string, raw or escaped at random."""
    short = {0x22: '\\"', 0x5C: "\\\\", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}
    must_escape = c < 0x20 or c in (0x22, 0x5C) or 0xD800 <= c < 0xE000
    if not must_escape and rng.random() < 0.75:
        return chr(c)
    if c in short and rng.random() < 0.7:
        return short[c]
    if c == 0x2F and rng.random() < 0.5:
        return "\\/"
    if c >= 0x10000:
        v = c - 0x10000
        return "\\u" + hex4(0xD800 + (v >> 10)) + "\\u" + hex4(0xDC00 + (v & 0x3FF))
    return "\\u" + hex4(c)


def rand_string(maxlen=12):
    return '"' + "".join(enc_char(rand_cp()) for _ in range(rng.randint(0, maxlen))) + '"'


def rand_digits(n):
    return str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(n - 1))


def rand_number():
    k = rng.random()
    if k < 0.2:
        return str(rng.randint(-10**6, 10**6))
    if k < 0.3:
        return ("-" if rng.random() < 0.5 else "") + rand_digits(rng.randint(1, 60))
    if k < 0.5:
        f = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        if math.isnan(f) or math.isinf(f):
            return "NaN" if math.isnan(f) else ("Infinity" if f > 0 else "-Infinity")
        return repr(f)
    if k < 0.65:
        f = rng.uniform(-1, 1) * 10 ** rng.randint(-25, 25)
        return repr(f)
    if k < 0.85:
        s = ("-" if rng.random() < 0.3 else "") + ("0" if rng.random() < 0.2 else rand_digits(rng.randint(1, 20)))
        if rng.random() < 0.7:
            s += "." + "".join(str(rng.randint(0, 9)) for _ in range(rng.randint(1, 22)))
        if rng.random() < 0.6:
            s += rng.choice("eE") + rng.choice(["", "+", "-"]) + str(rng.randint(0, 340))
        return s
    if k < 0.9:
        return rng.choice(["NaN", "Infinity", "-Infinity", "1e16", "1e-5", "1e-4", "0.0001", "9999999999999999.0",
                           "1e22", "1e23", "5e-324", "1.7976931348623157e308", "1e309", "-0.0", "-0"])
    return repr(float(rng.randint(-10**20, 10**20)))


def ws():
    k = rng.random()
    if k < 0.8:
        return ""
    return rng.choice([" ", "  ", "\t", " \t "])


def rand_value(depth=0):
    k = rng.random()
    if depth >= 3:
        k = k * 0.55  # scalars only
    if k < 0.25:
        return rand_string()
    if k < 0.45:
        return rand_number()
    if k < 0.55:
        return rng.choice(["true", "false", "null"])
    if k < 0.75:
        return "[" + ws() + ("," + ws()).join(rand_value(depth + 1) + ws() for _ in range(rng.randint(0, 5))) + "]"
    return rand_object(depth + 1)


def rand_key(pool):
    if pool and rng.random() < 0.25:
        # A duplicate, possibly spelled differently.
        k = rng.choice(pool)
        return '"' + "".join(enc_char(ord(ch)) for ch in k) + '"', k
    k = "".join(chr(rand_cp()) for _ in range(rng.randint(0, 6)))
    pool.append(k)
    return '"' + "".join(enc_char(ord(ch)) for ch in k) + '"', k


def rand_object(depth=0, nkeys=None):
    pool = []
    n = rng.randint(0, 6) if nkeys is None else nkeys
    items = []
    for _ in range(n):
        kt, _ = rand_key(pool)
        items.append(ws() + kt + ws() + ":" + ws() + rand_value(depth + 1) + ws())
    return "{" + ",".join(items) + ws() + "}"


def rand_record():
    k = rng.random()
    if k < 0.12:
        body = rand_object(0, rng.randint(1, 40))
    else:
        body = rand_object(0)
    ts = rng.random()
    if ts < 0.5:
        tsv = rand_number() if rng.random() < 0.8 else rng.choice(["null", "true", "false", '"x"', "[]", "{}"])
        tk = '"timestamp"' if rng.random() < 0.9 else '"time\\u0073tamp"'
        ins = tk + ": " + tsv
        body = "{" + ins + ("" if body.strip() in ("{}",) or body[1:].lstrip(" \t").startswith("}") else ", ") + body[1:]
    pre = post = ""
    if rng.random() < 0.1:
        pre = rng.choice([" ", "\t", "\x0b", "\u3000", "\xa0", "\x1c", "\u2028"])
    if rng.random() < 0.1:
        post = rng.choice([" ", "\t", "\x0c", "\x85", "\u2029", "\x1f"])
    return (pre + body + post).encode("utf-8", "surrogatepass")


def corrupt(raw):
    k = rng.random()
    b = bytearray(raw)
    if k < 0.3 and len(b) > 1:
        return bytes(b[: rng.randint(1, len(b) - 1)])
    if k < 0.5:
        i = rng.randint(0, len(b))
        return bytes(b[:i]) + bytes([rng.choice(b'{}[]",:\\ tfnu0123456789.eE-+\x0b\x00\x7f\xff\xc3\r')]) + bytes(b[i:])
    if k < 0.7 and b:
        i = rng.randrange(len(b))
        b[i] = rng.randint(0, 255)
        if b[i] == 0x0A:
            b[i] = 0x0B
        return bytes(b)
    if k < 0.8 and b:
        i = rng.randrange(len(b))
        del b[i]
        return bytes(b)
    if k < 0.9:
        return raw + rng.choice([b" x", b"}", b",", b"\r", b"\r\r", b" {}", b"\xe2\x80"])
    return b"\xef\xbb\xbf" + raw


for i in range(700):
    add("random_record_%d" % i, rand_record())
for i in range(400):
    add("random_corrupt_%d" % i, corrupt(rand_record()))
for i in range(60):
    add("random_value_%d" % i, rand_value().encode("utf-8", "surrogatepass"))


# --------------------------------------------------------------------------
# Output.


def write_golden():
    path = os.path.join(HERE, "golden.jsonl")
    seen = set()
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for name, raw in CASES:
            assert name not in seen, name
            seen.add(name)
            v = classify(raw)
            rec = {"name": name, "line": base64.b64encode(raw).decode("ascii")}
            rec.update(v)
            f.write(json.dumps(rec) + "\n")
    return path


def store_stats(paths):
    st = {"lines": 0, "records": 0, "blank": 0, "corrupt": 0, "reasons": {}, "repr_total": 0}
    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for raw in lines:
            st["lines"] += 1
            v = classify(raw)
            if v["class"] == "Record":
                st["records"] += 1
                st["repr_total"] += v["size"]
            elif v["class"] == "Blank":
                st["blank"] += 1
            else:
                st["corrupt"] += 1
                st["reasons"][v["reason"]] = st["reasons"].get(v["reason"], 0) + 1
    return st


def write_store():
    fx = os.path.join(REPO, "testdata", "fixtures")
    jsonl = [os.path.join(fx, "jsonl", "store.jsonl")]
    rot = [os.path.join(fx, "rotating", "store.log.%d" % i) for i in range(7, 0, -1)]
    rot.append(os.path.join(fx, "rotating", "store.log"))
    out = {
        "jsonl/store.jsonl": store_stats(jsonl),
        "rotating/store.log*": dict(store_stats(rot), files=[os.path.relpath(p, fx) for p in rot]),
    }
    # Cross-check with Papyra's own reading loop (strip, json.loads, dict).
    total = 0
    for p in jsonl:
        with open(p, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    o = json.loads(line)
                except Exception:
                    continue
                if isinstance(o, dict):
                    total += len(repr(o).encode("utf-8"))
    assert total == out["jsonl/store.jsonl"]["repr_total"]
    with open(os.path.join(HERE, "store.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


def write_printable():
    with open(os.path.join(HERE, "printable14.txt"), "w") as f:
        f.write("# str.isprintable() ranges of CPython %s, Unicode %s (inclusive, hex)\n"
                % (sys.version.split()[0], unicodedata.unidata_version))
        start = None
        for c in range(0x110001):
            p = c <= 0x10FFFF and chr(c).isprintable()
            if p and start is None:
                start = c
            elif not p and start is not None:
                f.write("%x %x\n" % (start, c - 1))
                start = None


if __name__ == "__main__":
    write_golden()
    write_store()
    write_printable()
    print("wrote %d cases" % len(CASES))
