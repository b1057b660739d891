package config

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v2"
)

// A decoding error of yaml.v2 quotes the value it could not decode
// ("line 4: cannot unmarshal !!str `Bearer ...` into config.Header"): up to
// ten characters of it, the first seven of a longer one. Where the value is
// a credential written where a list or a mapping belongs (http_headers,
// basic_auth, authorization, oauth2, tls_config of a backend), those
// characters would reach the log, `promgate check` and the Event of a
// refused reload. So no decoding error of a configuration carries a value:
// each is rewritten to the field at fault, its line, what the field expects
// and what kind of value it got, and the field is found by locating the
// value's node in the document.

// typeErrorRE matches yaml.v2's type errors: the line, and the value's tag.
var typeErrorRE = regexp.MustCompile(`^line (\d+): cannot unmarshal (\S+)`)

// yamlNode is a value of the document, located.
type yamlNode struct {
	// path names it as validation errors do:
	// backends[0].http.http_headers["X-Scope-OrgID"].values.
	path string
	// typ is the Go type it is decoded into, nil if none.
	typ reflect.Type
	// frag is the beginning of yaml.v2's type error for it, up to " into ":
	// the line, the tag and the quoted start of a scalar.
	frag string
	// value is a scalar's text.
	value  string
	scalar bool
}

// nodeIndex locates the values of a document by what a type error says of
// them.
type nodeIndex struct {
	nodes  []*yamlNode
	byFrag map[string][]*yamlNode
}

// indexNodes locates every value of data, a document of type Config. A
// document that does not parse has no values.
func indexNodes(data []byte) *nodeIndex {
	ix := &nodeIndex{byFrag: map[string][]*yamlNode{}}
	var root probe
	if err := yaml.Unmarshal(data, &root); err != nil {
		return ix
	}
	ix.walk(&root, "", reflect.TypeFor[Config]())
	return ix
}

// probe decodes any YAML value and records what yaml.v2 says of it in a
// type error, which carries the line that matching needs.
type probe struct {
	frag    string
	value   string
	scalar  bool
	mapping map[any]*probe
	items   []*probe
}

// UnmarshalYAML decodes the value into a func, which no YAML value decodes
// into, to have yaml.v2 describe it, then decodes it as what it is.
func (p *probe) UnmarshalYAML(unmarshal func(any) error) error {
	var never func()
	var te *yaml.TypeError
	if err := unmarshal(&never); !errors.As(err, &te) || len(te.Errors) != 1 {
		return nil // null
	}
	frag, _, ok := cutTypeError(te.Errors[0])
	if !ok {
		return nil
	}
	p.frag = frag
	switch typeErrorRE.FindStringSubmatch(frag)[2] {
	case "!!map":
		_ = unmarshal(&p.mapping)
	case "!!seq":
		_ = unmarshal(&p.items)
	default:
		p.scalar = true
		_ = unmarshal(&p.value)
	}
	return nil
}

// cutTypeError splits a yaml.v2 type error at its last " into ": the node's
// description, and the Go type. The description quotes the value's start;
// Go type names do not contain " into ".
func cutTypeError(msg string) (frag, goType string, ok bool) {
	if !typeErrorRE.MatchString(msg) {
		return "", "", false
	}
	i := strings.LastIndex(msg, " into ")
	if i < 0 {
		return "", "", false
	}
	return msg[:i], msg[i+len(" into "):], true
}

func (ix *nodeIndex) walk(p *probe, path string, t reflect.Type) {
	if p == nil || p.frag == "" {
		return
	}
	n := &yamlNode{path: path, typ: t, frag: p.frag, value: p.value, scalar: p.scalar}
	ix.nodes = append(ix.nodes, n)
	ix.byFrag[p.frag] = append(ix.byFrag[p.frag], n)
	keys := make([]any, 0, len(p.mapping))
	for k := range p.mapping {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
	for _, k := range keys {
		key := fmt.Sprint(k)
		ct, mapKey := fieldType(t, key)
		ix.walk(p.mapping[k], joinPath(path, key, mapKey || (t == nil && !identRE.MatchString(key))), ct)
	}
	var et reflect.Type
	if t = deref(t); t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		et = t.Elem()
	}
	for i, item := range p.items {
		ix.walk(item, fmt.Sprintf("%s[%d]", path, i), et)
	}
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// joinPath appends a field, or a map key in brackets, to path.
func joinPath(path, key string, mapKey bool) string {
	switch {
	case mapKey:
		return fmt.Sprintf("%s[%q]", path, key)
	case path == "":
		return key
	default:
		return path + "." + key
	}
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// fieldType is the Go type yaml.v2 decodes key of a mapping into when the
// mapping is decoded into t, and whether key is a map key (rather than a
// struct field). Inline structs and maps count, as yaml.v2 reads them.
func fieldType(t reflect.Type, key string) (reflect.Type, bool) {
	t = deref(t)
	if t == nil {
		return nil, false
	}
	switch t.Kind() {
	case reflect.Map:
		return t.Elem(), true
	case reflect.Struct:
		var inlineMap reflect.Type
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			if slices.Contains(strings.Split(opts, ","), "inline") {
				switch f.Type.Kind() {
				case reflect.Map:
					inlineMap = f.Type.Elem()
				case reflect.Struct:
					if ct, mapKey := fieldType(f.Type, key); ct != nil {
						return ct, mapKey
					}
				}
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if name == key {
				return f.Type, false
			}
		}
		if inlineMap != nil {
			return inlineMap, true
		}
	}
	return nil, false
}

// find returns the node that a type error describes by frag, of a value
// with tag that could not be decoded into goType. Several nodes can share
// a description (`rules: {}` and the document are both "line 1: cannot
// unmarshal !!map"); the best is one decoded into goType, one whose type
// cannot take such a value, and one at or under within (the rule or
// backend that was being decoded), in that order.
func (ix *nodeIndex) find(frag, tag, goType, within string) *yamlNode {
	var best *yamlNode
	bestScore := -1
	for _, n := range ix.byFrag[frag] {
		score := 0
		if t := deref(n.typ); t != nil && t.String() == goType {
			score += 4
		}
		switch typeKind(n.typ) {
		case "a mapping":
			if tag != "!!map" {
				score += 2
			}
		case "a list":
			if tag != "!!seq" {
				score += 2
			}
		default:
			score += 2
		}
		if under(n.path, within) {
			score++
		}
		if score > bestScore {
			best, bestScore = n, score
		}
	}
	return best
}

func pick(nodes []*yamlNode, within string) *yamlNode {
	for _, n := range nodes {
		if under(n.path, within) {
			return n
		}
	}
	if len(nodes) > 0 {
		return nodes[0]
	}
	return nil
}

// under reports whether path is within or a field, key or element of it.
func under(path, within string) bool {
	if within == "" || path == within {
		return true
	}
	rest, ok := strings.CutPrefix(path, within)
	return ok && (strings.HasPrefix(rest, ".") || strings.HasPrefix(rest, "["))
}

// typeError rewrites a yaml.v2 type error ("line 4: cannot unmarshal !!str
// `Bearer ...` into config.Header") of the value at or under within as the
// value's path, line, and the kinds expected and found, without the value:
// `backends[0].http.http_headers["Authorization"]: line 4: expected a
// mapping, got a string`. ok is false for another message.
func (ix *nodeIndex) typeError(within, msg string) (_ string, ok bool) {
	m := typeErrorRE.FindStringSubmatch(msg)
	if m == nil {
		return "", false
	}
	line, tag := m[1], m[2]
	path, want := within, "another kind of value"
	if frag, goType, ok := cutTypeError(msg); ok {
		var t reflect.Type
		if n := ix.find(frag, tag, goType, within); n != nil {
			path, t = n.path, n.typ
		}
		want = expectedKind(goType, t)
	}
	s := fmt.Sprintf("line %s: expected %s, got %s", line, want, tagKind(tag))
	if path != "" {
		s = path + ": " + s
	}
	return s, true
}

// expectedKind describes what a value decoded into goType (as yaml.v2
// names it), or else into t, must be.
func expectedKind(goType string, t reflect.Type) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "struct"):
		return "a mapping"
	}
	if k, ok := kindNames[goType]; ok {
		return k
	}
	// A named type, or the plain type its UnmarshalYAML decodes into
	// (config.plain of prometheus/common): its kind is that of the field.
	return typeKind(t)
}

// typeKind describes what a value decoded into t must be.
func typeKind(t reflect.Type) string {
	if t = deref(t); t != nil {
		switch t.Kind() {
		case reflect.Struct, reflect.Map:
			return "a mapping"
		case reflect.Slice, reflect.Array:
			return "a list"
		}
		if k, ok := kindNames[t.Kind().String()]; ok {
			return k
		}
	}
	return "another kind of value"
}

var kindNames = map[string]string{
	"string": "a string",
	"bool":   "true or false",
	"int":    "an integer", "int8": "an integer", "int16": "an integer", "int32": "an integer", "int64": "an integer",
	"uint": "a non-negative integer", "uint8": "a non-negative integer", "uint16": "a non-negative integer", "uint32": "a non-negative integer", "uint64": "a non-negative integer",
	"float32": "a number", "float64": "a number",
}

// tagKind describes the kind of a value by its YAML tag.
func tagKind(tag string) string {
	switch tag {
	case "!!str":
		return "a string"
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!seq":
		return "a list"
	case "!!map":
		return "a mapping"
	case "!!binary":
		return "binary data"
	case "!!timestamp":
		return "a timestamp"
	}
	return "a value with a tag of its own"
}

// urlError rewrites the error of a URL field (proxy_url of a backend's
// http), which quotes the whole URL, credentials included, as the field's
// path and the reason, where the reason quotes none of it.
func (ix *nodeIndex) urlError(within string, ue *url.Error) string {
	var match []*yamlNode
	for _, n := range ix.nodes {
		if n.scalar && n.value == ue.URL {
			match = append(match, n)
		}
	}
	path := within
	if n := pick(match, within); n != nil {
		path = n.path
	}
	s := "not a valid URL"
	if reason := ue.Err.Error(); !strings.ContainsAny(reason, "\"'`") {
		s += ": " + reason
	}
	if path != "" {
		s = path + ": " + s
	}
	return s
}

// redactValues rewrites another error of an UnmarshalYAML within a
// backend (a TLS version's, a duration's, or one prometheus/common adds
// later) so that it quotes no value of the backend: each one the message
// contains (of three characters or more) is replaced, and the message is
// located at that value's field.
func (ix *nodeIndex) redactValues(within, msg string) string {
	var found []*yamlNode
	for _, n := range ix.nodes {
		if n.scalar && len(n.value) >= 3 && under(n.path, within) && strings.Contains(msg, n.value) {
			found = append(found, n)
		}
	}
	sort.SliceStable(found, func(i, j int) bool { return len(found[i].value) > len(found[j].value) })
	path := within
	if len(found) > 0 {
		path = found[0].path
	}
	for _, n := range found {
		msg = strings.ReplaceAll(msg, n.value, "<value>")
		if n.path != found[0].path {
			path = within // values of several fields: the backend's error
		}
	}
	if path == "" {
		return msg
	}
	return path + ": " + msg
}
