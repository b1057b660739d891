package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v2"
)

// Load reads and parses the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return ParseFile(path, data)
}

// ParseFile parses data, the content of the configuration file at path, as
// Load does, without reading the file: a caller that has hashed or
// otherwise inspected the bytes gets the configuration of those bytes.
// path names the file in errors and is the directory relative file names
// are resolved against.
func ParseFile(path string, data []byte) (*Config, error) {
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.setDirectory(path)
	return cfg, nil
}

// document is the file's top level; each rule is decoded on its own so that
// its errors can name it.
type document struct {
	Rules         []ruleNode         `yaml:"rules"`
	ExternalRules []ruleNode         `yaml:"externalRules"`
	ResourceRules *resourceRulesNode `yaml:"resourceRules"`
	Backends      []backendNode      `yaml:"backends"`
}

type backendNode struct {
	backend Backend
	err     error
}

// UnmarshalYAML is ruleNode's for backends.
func (n *backendNode) UnmarshalYAML(unmarshal func(any) error) error {
	n.err = detach(unmarshal(&n.backend))
	return nil
}

type ruleNode struct {
	rule DiscoveryRule
	err  error
}

// UnmarshalYAML decodes the rule with the document's decoder (so strictness
// applies) and keeps its error instead of failing the whole document.
func (n *ruleNode) UnmarshalYAML(unmarshal func(any) error) error {
	n.err = detach(unmarshal(&n.rule))
	return nil
}

type resourceRulesNode struct {
	rules ResourceRules
	err   error
}

// UnmarshalYAML is ruleNode's for resourceRules.
func (n *resourceRulesNode) UnmarshalYAML(unmarshal func(any) error) error {
	n.err = detach(unmarshal(&n.rules))
	return nil
}

// detach copies a yaml.TypeError: the decoder reuses the memory of the one an
// Unmarshaler's callback returns.
func detach(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return &yaml.TypeError{Errors: append([]string(nil), te.Errors...)}
	}
	return err
}

// Parse parses a YAML (or JSON) configuration as prometheus-adapter does
// (gopkg.in/yaml.v2's UnmarshalStrict): unknown fields and duplicate keys are
// errors, and a YAML number or boolean where a string is expected is read as
// its text (`as: 123` is "123"; see Warnings). Every error names the rule at
// fault, and no decoding error quotes a credential (see locate.go). The
// result is structurally validated (see Validate).
func Parse(data []byte) (*Config, error) {
	var ix *nodeIndex // located on the first decoding error
	decodeError := func(path string, err error) error {
		if ix == nil {
			ix = indexNodes(data)
		}
		return yamlError(ix, path, err)
	}
	var doc document
	if err := yaml.UnmarshalStrict(data, &doc); err != nil {
		return nil, decodeError("", err)
	}
	cfg := &Config{}
	var errs []error
	decodeRules := func(field string, in []ruleNode) []DiscoveryRule {
		if len(in) == 0 {
			return nil
		}
		out := make([]DiscoveryRule, len(in))
		for i, n := range in {
			out[i] = n.rule
			if n.err != nil {
				errs = append(errs, decodeError(fmt.Sprintf("%s[%d]", field, i), n.err))
			}
		}
		return out
	}
	cfg.Rules = decodeRules("rules", doc.Rules)
	cfg.ExternalRules = decodeRules("externalRules", doc.ExternalRules)
	if n := doc.ResourceRules; n != nil {
		cfg.ResourceRules = &n.rules
		if n.err != nil {
			errs = append(errs, decodeError("resourceRules", n.err))
		}
	}
	for i, n := range doc.Backends {
		cfg.Backends = append(cfg.Backends, n.backend)
		if n.err != nil {
			errs = append(errs, decodeError(fmt.Sprintf("backends[%d]", i), n.err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.loadWarnings = coercions(data, cfg)
	return cfg, nil
}

var (
	notFoundRE = regexp.MustCompile(`^(line \d+: )field (\S+) not found in type (\S+)$`)
	setTwiceRE = regexp.MustCompile(`^(line \d+: )field (\S+) already set in type (\S+)$`)
	// fieldPrefix locates the fields of a nested type within its rule.
	fieldPrefix = map[string]string{
		"config.NameMapping":           "name.",
		"config.ResourceMapping":       "resources.",
		"config.RegexFilter":           "seriesFilters[].",
		"config.GroupResource":         "resources.overrides[].",
		"config.LabelValueReplacement": "labelValueReplacements[].",
		"config.Backend":               "",
	}
	// typeNames replaces Go type names in yaml.v2's other messages.
	typeNames = strings.NewReplacer(
		"[]config.ruleNode", "a list of rules",
		"[]config.backendNode", "a list of backends",
		"config.backendNode", "a backend",
		"config.resourceRulesNode", "resourceRules",
		"config.ruleNode", "a rule",
		"config.document", "a configuration",
		"config.", "",
	)
)

// yamlError rewrites a yaml.v2 error for the rule at path ("" for the
// document), whose values ix locates: one line per problem, each prefixed
// with path, or with the path of the value at fault. No type error quotes
// a value of the file, nor does any error of a backend, whose values
// include credentials (see locate.go).
func yamlError(ix *nodeIndex, path string, err error) error {
	prefix := ""
	if path != "" {
		prefix = path + ": "
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		if ue := (*url.Error)(nil); errors.As(err, &ue) { // it quotes the URL, a password too
			return errors.New(ix.urlError(path, ue))
		}
		if path == "" { // the parser's, as the rules' decoding errors are TypeErrors
			return fmt.Errorf("invalid YAML: %w", err)
		}
		if strings.HasPrefix(path, "backends[") {
			return errors.New(ix.redactValues(path, err.Error()))
		}
		return fmt.Errorf("%s%w", prefix, err) // an Unmarshaler's, such as a duration's
	}
	errs := make([]error, 0, len(te.Errors))
	for _, msg := range te.Errors {
		if s, ok := ix.typeError(path, msg); ok {
			errs = append(errs, errors.New(s))
			continue
		}
		if m := notFoundRE.FindStringSubmatch(msg); m != nil {
			msg = fmt.Sprintf("%sunknown field %q", m[1], fieldPrefix[m[3]]+m[2])
		} else if m := setTwiceRE.FindStringSubmatch(msg); m != nil {
			msg = fmt.Sprintf("%sfield %q is set twice", m[1], fieldPrefix[m[3]]+m[2])
		} else {
			msg = typeNames.Replace(msg)
		}
		errs = append(errs, errors.New(prefix+msg))
	}
	return errors.Join(errs...)
}

// coercions reports the scalars of data that are not YAML strings but were
// decoded into string fields of cfg: prometheus-adapter reads them as their
// text, and so does promgate, but the text may not be what the author meant
// (`as: 1.50`, `as: yes`, `as: 0x1F` stay as written).
func coercions(data []byte, cfg *Config) []Warning {
	var tree any
	if err := yaml.Unmarshal(data, &tree); err != nil {
		return nil
	}
	var out []Warning
	walkCoercions("", tree, reflect.ValueOf(cfg).Elem(), &out)
	return out
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// walkCoercions appends to out the coercions of node, the YAML tree at
// path, decoded into v: a non-string scalar in a string field, a
// non-string key of a map with string keys. It skips what decodes itself
// (a yaml.Unmarshaler) and what v does not hold.
func walkCoercions(path string, node any, v reflect.Value, out *[]Warning) {
	if node == nil {
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		return
	}
	switch v.Kind() {
	case reflect.String:
		if _, ok := node.(string); !ok {
			*out = append(*out, Warning{Path: path, Message: fmt.Sprintf("YAML %s read as the string %q; quote it to say so", yamlKind(node), v.String())})
		}
	case reflect.Struct:
		if m, ok := node.(map[any]any); ok {
			walkStruct(path, m, v, out)
		}
	case reflect.Slice:
		if s, ok := node.([]any); ok {
			for i := 0; i < len(s) && i < v.Len(); i++ {
				walkCoercions(fmt.Sprintf("%s[%d]", path, i), s[i], v.Index(i), out)
			}
		}
	case reflect.Map:
		if m, ok := node.(map[any]any); ok && v.Type().Key().Kind() == reflect.String {
			walkMap(path, m, v, out)
		}
	}
}

// walkStruct walks the fields of struct v that m sets, by their yaml name.
func walkStruct(path string, m map[any]any, v reflect.Value, out *[]Warning) {
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		if child, ok := m[name]; ok {
			field := name
			if path != "" {
				field = path + "." + name
			}
			walkCoercions(field, child, v.Field(i), out)
		}
	}
}

// walkMap walks the entries of m, decoded into v, a map with string keys,
// in the order of their keys' text, and reports the keys that are not
// YAML strings.
func walkMap(path string, m map[any]any, v reflect.Value, out *[]Warning) {
	keys := make([]any, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
	for _, k := range keys {
		text := fmt.Sprint(k)
		p := fmt.Sprintf("%s[%q]", path, text)
		if _, ok := k.(string); !ok {
			*out = append(*out, Warning{Path: p, Message: fmt.Sprintf("YAML %s key read as a string (its text as written); quote it to say so", yamlKind(k))})
		}
		if child := v.MapIndex(reflect.ValueOf(text).Convert(v.Type().Key())); child.IsValid() {
			walkCoercions(p, m[k], child, out)
		}
	}
}

// yamlKind names the YAML type of a decoded scalar, for warnings.
func yamlKind(v any) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case int, int64, uint64, float64:
		return "number"
	default:
		return fmt.Sprintf("%T", v)
	}
}
