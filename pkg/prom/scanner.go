package prom

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/common/model"
)

// This file is the JSON scanner of the answers promgate reads whole
// (queries, label names and values, the envelope of an error answer): it
// walks one body in place, as encoding/json would accept it, and hands out
// strings that are slices of that body rather than copies.

// foldKey returns an object key in lower case, so that keys match
// case-insensitively, as encoding/json's struct fields do (Prometheus sends
// them in lower case: this costs nothing then).
func foldKey(k string) string {
	for i := 0; i < len(k); i++ {
		if c := k[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(k)
		}
	}
	return k
}

// scanner reads JSON from b. Strings without escapes are returned as
// slices of s, the same bytes as one string, so that they cost nothing;
// when s is "", each is copied out of b instead. The first error stops it;
// later calls do nothing.
type scanner struct {
	b   []byte
	s   string
	i   int
	err error
}

// fail records the first error, at the current offset.
func (d *scanner) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("offset %d: %s", d.i, fmt.Sprintf(format, args...))
	}
}

// ws skips white space.
func (d *scanner) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end or after an error.
func (d *scanner) peek() byte {
	if d.err != nil {
		return 0
	}
	d.ws()
	if d.i >= len(d.b) {
		d.fail("unexpected end of JSON input")
		return 0
	}
	return d.b[d.i]
}

// pos skips white space and returns the offset of the next value.
func (d *scanner) pos() int {
	d.ws()
	return d.i
}

// expect consumes the byte c, failing if another comes.
func (d *scanner) expect(c byte) bool {
	if d.peek() != c {
		if d.err == nil {
			d.fail("want %q, got %q", c, d.b[d.i])
		}
		return false
	}
	d.i++
	return true
}

// end checks that nothing but space follows.
func (d *scanner) end() {
	if d.err != nil {
		return
	}
	d.ws()
	if d.i != len(d.b) {
		d.fail("unexpected data after the top-level value")
	}
}

// null consumes a null and reports whether there was one.
func (d *scanner) null() bool {
	if d.peek() == 'n' && bytes.HasPrefix(d.b[d.i:], []byte("null")) {
		d.i += 4
		return true
	}
	return false
}

// object reads an object, calling fn with each key to read its value.
func (d *scanner) object(fn func(key string)) {
	if !d.expect('{') {
		return
	}
	if d.peek() == '}' {
		d.i++
		return
	}
	for d.err == nil {
		key := d.str()
		if !d.expect(':') {
			return
		}
		fn(key)
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return
		default:
			d.fail("want ',' or '}' in an object")
		}
	}
}

// array reads an array, calling fn to read each element.
func (d *scanner) array(fn func()) {
	if !d.expect('[') {
		return
	}
	if d.peek() == ']' {
		d.i++
		return
	}
	for d.err == nil {
		fn()
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return
		default:
			d.fail("want ',' or ']' in an array")
		}
	}
}

// str reads a string.
func (d *scanner) str() string {
	if !d.expect('"') {
		return ""
	}
	start := d.i
	escaped, ascii := false, true
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c == '"':
			d.i++
			if !escaped && (ascii || utf8.Valid(d.b[start:d.i-1])) {
				if d.s == "" {
					return string(d.b[start : d.i-1])
				}
				return d.s[start : d.i-1]
			}
			// Escapes, or invalid UTF-8 that encoding/json replaces.
			var out string
			if err := json.Unmarshal(d.b[start-1:d.i], &out); err != nil {
				d.fail("%v", err)
			}
			return out
		case c == '\\':
			escaped = true
			d.i += 2
		case c < 0x20:
			d.fail("control character in a string")
			return ""
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			d.i++
		}
	}
	d.fail("unexpected end of JSON input")
	return ""
}

// literal reads a number, true, false or null and returns its text.
func (d *scanner) literal() []byte {
	d.ws()
	start := d.i
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return d.b[start:d.i]
		case '"', '{', '[', ':':
			d.fail("unexpected %q", d.b[d.i])
			return nil
		}
		d.i++
	}
	return d.b[start:d.i]
}

// skip reads any value.
func (d *scanner) skip() {
	switch d.peek() {
	case 0:
	case '{':
		d.object(func(string) { d.skip() })
	case '[':
		d.array(d.skip)
	case '"':
		d.str()
	default:
		lit := d.literal()
		if len(lit) == 0 {
			d.fail("want a value")
			return
		}
		if !validNumber(lit) && string(lit) != "true" && string(lit) != "false" && string(lit) != "null" {
			d.fail("invalid literal %q", lit)
		}
	}
}

// boolean reads true or false.
func (d *scanner) boolean() bool {
	switch lit := string(d.literal()); {
	case d.err != nil:
	case lit == "true":
		return true
	case lit == "false":
	default:
		d.fail("want true or false, got %q", lit)
	}
	return false
}

// time reads a sample time, a JSON number of seconds with up to three
// decimals (more are truncated), exactly as model.Time's UnmarshalJSON does.
func (d *scanner) time() model.Time {
	lit := d.literal()
	if d.err != nil {
		return 0
	}
	if !validNumber(lit) {
		d.fail("sample time %q is not a JSON number", lit)
		return 0
	}
	base, frac, found := bytes.Cut(lit, []byte("."))
	v, err := strconv.ParseInt(string(base), 10, 64)
	if err != nil {
		d.fail("sample time %q: %v", lit, err)
		return 0
	}
	if !found {
		return model.Time(v * 1000)
	}
	if len(frac) > 3 {
		frac = frac[:3]
	}
	va, err := strconv.ParseInt(string(frac), 10, 32)
	if err != nil {
		d.fail("sample time %q: %v", lit, err)
		return 0
	}
	switch len(frac) {
	case 1:
		va *= 100
	case 2:
		va *= 10
	}
	if len(base) > 0 && base[0] == '-' {
		va = -va
	}
	return model.Time(v*1000 + va)
}

// float reads a sample value: a quoted number, NaN or ±Inf.
func (d *scanner) float() model.SampleValue {
	if d.peek() != '"' {
		d.fail("sample value must be a quoted string")
		return 0
	}
	s := d.str()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		d.fail("sample value %q: %v", s, errors.Unwrap(err))
		return model.SampleValue(math.NaN())
	}
	return model.SampleValue(f)
}

// validNumber reports whether b is a number in JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(b []byte) bool {
	i := 0
	digits := func() bool {
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(b)
}
