package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	pmodel "github.com/prometheus/common/model"
)

func ptr[T any](v T) *T { return &v }

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Config
	}{
		{name: "empty", in: "", want: &Config{}},
		{name: "comment only", in: "# nothing\n", want: &Config{}},
		{name: "null", in: "null\n", want: &Config{}},
		{
			name: "full rule",
			in: `
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  seriesFilters:
  - is: ^http_
  - isNot: _bucket$
  resources:
    template: <<.Resource>>
    overrides:
      kube_ns: {resource: namespace}
      deploy: {group: apps, resource: deployment}
  name:
    matches: ^(.*)_total$
    as: ${1}_per_second
  metricsQuery: sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)
externalRules:
- seriesQuery: '{__name__=~"^queue_.+"}'
  resources:
    namespaced: false
  labelValueReplacements:
  - {find: "|", replace: "/"}
`,
			want: &Config{
				Rules: []DiscoveryRule{{
					SeriesQuery:   `http_requests_total{namespace!="",pod!=""}`,
					SeriesFilters: []RegexFilter{{Is: "^http_"}, {IsNot: "_bucket$"}},
					Resources: ResourceMapping{
						Template: "<<.Resource>>",
						Overrides: map[string]GroupResource{
							"kube_ns": {Resource: "namespace"},
							"deploy":  {Group: "apps", Resource: "deployment"},
						},
					},
					Name:         NameMapping{Matches: "^(.*)_total$", As: "${1}_per_second"},
					MetricsQuery: "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)",
				}},
				ExternalRules: []DiscoveryRule{{
					SeriesQuery:            `{__name__=~"^queue_.+"}`,
					Resources:              ResourceMapping{Namespaced: ptr(false)},
					LabelValueReplacements: []LabelValueReplacement{{Find: "|", Replace: "/"}},
				}},
			},
		},
		{
			// prometheus-adapter configs spell out empty values.
			name: "adapter empty values",
			in: `
rules:
- seriesQuery: '{namespace!=""}'
  seriesFilters: []
  resources: {template: <<.Resource>>}
  name: {matches: "", as: ""}
  metricsQuery: ""
`,
			want: &Config{Rules: []DiscoveryRule{{
				SeriesQuery:   `{namespace!=""}`,
				SeriesFilters: []RegexFilter{},
				Resources:     ResourceMapping{Template: "<<.Resource>>"},
			}}},
		},
		{
			name: "json",
			in:   `{"rules": [{"seriesQuery": "up"}]}`,
			want: &Config{Rules: []DiscoveryRule{{SeriesQuery: "up"}}},
		},
		{
			name: "resource rules",
			in: `
resourceRules:
  cpu:
    containerQuery: a
    nodeQuery: b
    containerLabel: container
    resources: {overrides: {instance: {resource: node}}}
  memory: {containerQuery: c, nodeQuery: d, containerLabel: container}
  window: 2m
`,
			want: &Config{ResourceRules: &ResourceRules{
				CPU: ResourceRule{ContainerQuery: "a", NodeQuery: "b", ContainerLabel: "container",
					Resources: ResourceMapping{Overrides: map[string]GroupResource{"instance": {Resource: "node"}}}},
				Memory: ResourceRule{ContainerQuery: "c", NodeQuery: "d", ContainerLabel: "container"},
				Window: pmodel.Duration(2 * time.Minute),
			}},
		},
		{name: "null resource rules", in: "resourceRules: null\n", want: &Config{}},
		{
			name: "backend limits",
			in: `
backends:
- name: thanos
  url: https://thanos:10902
  maxResponseBytes: 1048576
  maxSamples: 1000
  maxSeries: 50000
- name: vm
  url: https://vm:8428
  maxSamples: -1
  maxSeries: -1
- name: plain
  url: https://prometheus:9090
`,
			want: &Config{Backends: []Backend{
				{Name: "thanos", URL: "https://thanos:10902", MaxResponseBytes: 1 << 20, MaxSamples: 1000, MaxSeries: 50000},
				{Name: "vm", URL: "https://vm:8428", MaxSamples: -1, MaxSeries: -1},
				{Name: "plain", URL: "https://prometheus:9090"},
			}},
		},
		{
			name: "backend limits in JSON",
			in:   `{"backends": [{"name": "thanos", "url": "https://thanos:10902", "maxSeries": 10}]}`,
			want: &Config{Backends: []Backend{{Name: "thanos", URL: "https://thanos:10902", MaxSeries: 10}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	const okRule = "- seriesQuery: up\n"
	const okResource = "{containerQuery: a, nodeQuery: b, containerLabel: c}"
	tests := []struct {
		name string
		in   string
		want string
	}{
		{
			name: "unknown field in rules[1]",
			in:   "rules:\n" + okRule + "- seriesQuery: up\n  metricQuery: x\n",
			want: `rules[1]: line 4: unknown field "metricQuery"`,
		},
		{
			name: "field names are case-sensitive",
			in:   "rules:\n- SeriesQuery: up\n",
			want: `rules[0]: line 2: unknown field "SeriesQuery"`,
		},
		{
			name: "case variant does not silently override",
			in:   "rules:\n- seriesQuery: up\n  metricsQuery: a\n  MetricsQuery: b\n",
			want: `rules[0]: line 4: unknown field "MetricsQuery"`,
		},
		{
			name: "unknown nested field",
			in:   "externalRules:\n" + okRule + okRule + "- seriesQuery: up\n  name: {matches: x, to: y}\n",
			want: `externalRules[2]: line 5: unknown field "name.to"`,
		},
		{
			name: "unknown field in a backend",
			in:   "backends:\n- name: thanos\n  url: http://thanos:9090\n  tenant: a\n",
			want: `backends[0]: line 4: unknown field "tenant"`,
		},
		{
			name: "backend problems, each named",
			in: "backends:\n- name: default\n  url: ftp://x\n- name: Thanos!\n  url: http://u:p@t:9090\n  dialect: sql\n  discovery: labels\n  params: {query: [x]}\n" +
				"- name: vm\n  url: http://vm:8428\n  http: {authorization: {credentials_file: /t}}\n- name: vm\n  url: https://vm:8428\n" +
				"rules:\n- seriesQuery: up\n  backend: nope\n",
			want: `backends[0].name: "default" is the backend of the --prometheus-* flags; choose another name
backends[0].url: want http:// or https://host[:port][/prefix]
backends[1].name: "Thanos!" is not a valid backend name (lower-case letters, digits, '-' and '_', at most 63)
backends[1].url: must not hold credentials: use http.basic_auth
backends[1].discovery: must be auto, index or series, not "labels"
backends[1].dialect: must be promql or metricsql, not "sql"
backends[1].params["query"]: is set by promgate itself
backends[2].http: http.authorization (a bearer token) would be sent in the clear to the plain http:// URL: use https://, or set allowCredentialsOverHTTP if the network path is trusted
backends[3].name: "vm" is also the name of backends[2]
rules[0].backend: unknown backend "nope" (backends: default, Thanos!, vm)`,
		},
		{
			name: "maxSeries not a number",
			in:   "backends:\n- name: thanos\n  url: https://thanos:10902\n  maxSeries: lots\n",
			want: "backends[0].maxSeries: line 4: expected an integer, got a string",
		},
		{
			name: "maxSeries of the second backend a list",
			in:   "backends:\n- name: thanos\n  url: https://thanos:10902\n- name: vm\n  url: https://vm:8428\n  maxSeries: [1]\n",
			want: "backends[1].maxSeries: line 6: expected an integer, got a list",
		},
		{
			name: "maxSamples and maxSeries not numbers",
			in:   "backends:\n- name: thanos\n  url: https://thanos:10902\n  maxSamples: []\n  maxSeries: {}\n",
			want: "backends[0].maxSamples: line 4: expected an integer, got a list\n" +
				"backends[0].maxSeries: line 5: expected an integer, got a mapping",
		},
		{
			name: "invalid HTTP client config of a backend",
			in:   "backends:\n- name: t\n  url: https://t\n  http: {basic_auth: {username: u, password: p, password_file: f}}\n",
			want: `backends[0]: at most one of basic_auth password, password_file & password_ref must be configured`,
		},
		{
			name: "unknown top-level field",
			in:   "rule:\n" + okRule,
			want: `line 1: unknown field "rule"`,
		},
		{
			name: "unknown field in resourceRules",
			in:   "resourceRules:\n  cpu: " + okResource + "\n  memory: " + okResource + "\n  windows: 1m\n",
			want: `resourceRules: line 4: unknown field "windows"`,
		},
		{
			name: "duplicate YAML key",
			in:   "rules:\n- seriesQuery: up\n  seriesQuery: down\n",
			want: `rules[0]: line 3: field "seriesQuery" is set twice`,
		},
		{
			name: "duplicate override label",
			in:   "rules:\n- seriesQuery: up\n  resources:\n    overrides: {pod: {resource: pod}, pod: {resource: pods}}\n",
			want: `rules[0]: line 4: key "pod" already set in map`,
		},
		{
			name: "duplicate top-level key",
			in:   "rules: []\nrules: []\n",
			want: `line 2: field "rules" is set twice`,
		},
		{
			name: "rules is not a list",
			in:   "rules: {}\n",
			want: "rules: line 1: expected a list, got a mapping",
		},
		{
			name: "rule is not a mapping",
			in:   "rules:\n- up\n",
			want: "rules[0]: line 2: expected a mapping, got a string",
		},
		{
			name: "quoted boolean",
			in:   "externalRules:\n- seriesQuery: up\n  resources: {namespaced: 'false'}\n",
			want: "externalRules[0].resources.namespaced: line 3: expected true or false, got a string",
		},
		{
			name: "JSON escape YAML 1.1 lacks",
			in:   `{"rules": [{"seriesQuery": "a\/b"}]}`,
			want: "invalid YAML: yaml: found unknown escape character",
		},
		{
			name: "bad YAML",
			in:   "rules: [\n",
			want: "invalid YAML: yaml: line 1: did not find expected node content",
		},
		{
			name: "wrong type",
			in:   "rules:\n- seriesQuery: [a]\n",
			want: "rules[0].seriesQuery: line 2: expected a string, got a list",
		},
		{
			name: "bad window",
			in:   "resourceRules:\n  window: 2x\n",
			want: `resourceRules: unknown unit "x" in duration "2x"`,
		},
		{
			name: "missing seriesQuery",
			in:   "rules:\n" + okRule + "- name: {matches: x}\n",
			want: "rules[1].seriesQuery: is required",
		},
		{
			name: "bad regex in seriesFilters is",
			in:   "rules:\n- seriesQuery: up\n  seriesFilters: [{is: ok}, {is: '(a'}]\n",
			want: "rules[0].seriesFilters[1].is: invalid regular expression \"(a\": error parsing regexp: missing closing ): `(a`",
		},
		{
			name: "bad regex in seriesFilters isNot",
			in:   "externalRules:\n- seriesQuery: up\n  seriesFilters: [{isNot: '[z-a]'}]\n",
			want: "externalRules[0].seriesFilters[0].isNot: invalid regular expression \"[z-a]\": error parsing regexp: invalid character class range: `z-a`",
		},
		{
			name: "both is and isNot",
			in:   "rules:\n- seriesQuery: up\n  seriesFilters: [{is: a, isNot: b}]\n",
			want: "rules[0].seriesFilters[0]: set only one of is and isNot",
		},
		{
			name: "neither is nor isNot",
			in:   "rules:\n- seriesQuery: up\n  seriesFilters: [{}]\n",
			want: "rules[0].seriesFilters[0]: set one of is or isNot",
		},
		{
			name: "bad regex in name.matches",
			in:   "rules:\n" + okRule + okRule + "- seriesQuery: up\n  name: {matches: 'a**'}\n",
			want: "rules[2].name.matches: invalid regular expression \"a**\": error parsing regexp: invalid nested repetition operator: `**`",
		},
		{
			name: "several groups without as",
			in:   "rules:\n- seriesQuery: up\n  name: {matches: '^(a)_(b)$'}\n",
			want: `rules[0].name.as: is required when name.matches "^(a)_(b)$" has more than one capture group`,
		},
		{
			name: "override without resource",
			in:   "rules:\n- seriesQuery: up\n  resources: {overrides: {pod: {group: ''}}}\n",
			want: `rules[0].resources.overrides["pod"].resource: is required`,
		},
		{
			name: "override with invalid label name",
			in:   "rules:\n- seriesQuery: up\n  resources: {overrides: {'': {resource: pod}}}\n",
			want: `rules[0].resources.overrides[""]: "" is not a valid Prometheus label name`,
		},
		{
			name: "replacement without find",
			in:   "externalRules:\n- seriesQuery: up\n  labelValueReplacements: [{replace: x}]\n",
			want: "externalRules[0].labelValueReplacements[0].find: is required",
		},
		{
			name: "multiple errors joined, in config order",
			in: `
rules:
- seriesQuery: up
  seriesFilters: [{is: a, isNot: b}]
- name: {matches: '('}
  resources: {overrides: {b: {resource: pod}, a: {}}}
externalRules:
- seriesQuery: ""
`,
			want: "rules[0].seriesFilters[0]: set only one of is and isNot\n" +
				"rules[1].seriesQuery: is required\n" +
				"rules[1].name.matches: invalid regular expression \"(\": error parsing regexp: missing closing ): `(`\n" +
				"rules[1].resources.overrides[\"a\"].resource: is required\n" +
				"externalRules[0].seriesQuery: is required",
		},
		{
			name: "decoding errors of several rules joined",
			in:   "rules:\n- foo: 1\n" + okRule + "- bar: 2\n",
			want: "rules[0]: line 2: unknown field \"foo\"\nrules[2]: line 4: unknown field \"bar\"",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("Parse returned a config with its error")
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", err, tt.want)
			}
		})
	}
}

func TestValidateFieldErrors(t *testing.T) {
	cfg := &Config{
		Rules: []DiscoveryRule{
			{SeriesQuery: "up"},
			{SeriesQuery: "up", Name: NameMapping{Matches: "("}},
		},
		ResourceRules: &ResourceRules{
			CPU:    ResourceRule{ContainerQuery: "a", NodeQuery: "b", ContainerLabel: "c"},
			Memory: ResourceRule{ContainerQuery: "a", NodeQuery: "b", ContainerLabel: "c"},
			Window: pmodel.Duration(-time.Second),
		},
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate succeeded")
	}
	var paths []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a *FieldError", e)
		}
		paths = append(paths, fe.Path)
	}
	want := []string{"rules[1].name.matches", "resourceRules.window"}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("paths = %q, want %q", paths, want)
	}
	if (&Config{}).Validate() != nil {
		t.Error("empty config is invalid")
	}
}

func TestFieldError(t *testing.T) {
	inner := errors.New("boom")
	fe := &FieldError{Path: "rules[0].name", Err: inner}
	if got := fe.Error(); got != "rules[0].name: boom" {
		t.Errorf("Error() = %q", got)
	}
	if !errors.Is(fe, inner) {
		t.Error("FieldError does not unwrap")
	}
	if got := Fieldf("a.b", "%d is %s", 1, "x").Error(); got != "a.b: 1 is x" {
		t.Errorf("Fieldf = %q", got)
	}
}

func TestIsNamespaced(t *testing.T) {
	for _, tt := range []struct {
		in   *bool
		want bool
	}{{nil, true}, {ptr(true), true}, {ptr(false), false}} {
		if got := (ResourceMapping{Namespaced: tt.in}).IsNamespaced(); got != tt.want {
			t.Errorf("IsNamespaced(%v) = %v", tt.in, got)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("rules:\n- seriesQuery: up\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("rules:\n- seriesQuery: up\n  x: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(good)
	if err != nil || len(cfg.Rules) != 1 || cfg.Rules[0].SeriesQuery != "up" {
		t.Errorf("Load(good) = %+v, %v", cfg, err)
	}
	_, err = Load(bad)
	if want := "config " + bad + `: rules[0]: line 3: unknown field "x"`; err == nil || err.Error() != want {
		t.Errorf("Load(bad) error = %v, want %s", err, want)
	}
	withBackend := filepath.Join(dir, "backends.yaml")
	if err := os.WriteFile(withBackend, []byte("backends:\n- name: thanos\n  url: https://thanos:9090\n  http:\n    authorization: {credentials_file: token}\n    tls_config: {ca_file: /etc/ca.crt}\nrules:\n- seriesQuery: up\n  backend: thanos\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = Load(withBackend)
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := cfg.Backend("thanos"); !ok || b.HTTP.Authorization.CredentialsFile != filepath.Join(dir, "token") || b.HTTP.TLSConfig.CAFile != "/etc/ca.crt" {
		t.Errorf("backend thanos = %+v: want relative file names resolved against the config's directory", b)
	}
	if cfg.Rules[0].Backend != "thanos" {
		t.Errorf("rules[0].backend = %q", cfg.Rules[0].Backend)
	}
	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if err == nil || !strings.HasPrefix(err.Error(), "reading config: ") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) error = %v", err)
	}
}

// TestLoadShippedConfigs checks that the configuration files in the
// repository parse.
func TestLoadShippedConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	files = append(files, "../../config/promgate.yaml")
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			continue
		}
		if _, err := Load(f); err != nil {
			t.Errorf("Load(%s): %v", f, err)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	seeds := []string{
		"",
		"null",
		"rules:\n- seriesQuery: up\n",
		"rules:\n- seriesQuery: up\n  seriesQuery: x\n",
		"rules:\n- seriesQuery: up\n  seriesFilters: [{is: '(', isNot: x}]\n",
		"rules:\n- seriesQuery: up\n  name: {matches: '(a)(b)'}\n  resources: {overrides: {'a-b': {resource: ''}}}\n",
		"externalRules:\n- seriesQuery: up\n  resources: {namespaced: false}\n  labelValueReplacements: [{find: a}]\n",
		"resourceRules:\n  window: 2m\n  cpu: {containerQuery: a, nodeQuery: b, containerLabel: c}\n",
		"resourceRules:\n  window: -1s\n",
		`{"rules": [{"seriesQuery": "up", "resources": {"overrides": {"pod": {"resource": "pod"}}}}]}`,
		"- a\n",
		"rules: {}\n",
		"a: &x [*x]\n",
		"rules: [\n",
	}
	if b, err := os.ReadFile("testdata/prometheus-adapter-sample.yaml"); err == nil {
		seeds = append(seeds, string(b))
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v: want exactly one of config and error", cfg, err)
		}
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config that does not validate: %v", verr)
			}
		}
	})
}

// TestParseScalarsAsStrings checks that YAML numbers and booleans where a
// string is expected are read as their text, as prometheus-adapter's
// gopkg.in/yaml.v2 loader reads them, with a warning each.
func TestParseScalarsAsStrings(t *testing.T) {
	in := `
rules:
- seriesQuery: up
  name: {matches: "^x_(.*)$", as: 123}
  resources:
    template: <<.Resource>>
    overrides:
      1: {resource: 0x1F}
externalRules:
- seriesQuery: up
  name: {as: 1.50}
  metricsQuery: yes
  resources: {namespaced: no}
  labelValueReplacements: [{find: 1e3, replace: ~}]
`
	cfg, err := Parse([]byte(in))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	r, e := cfg.Rules[0], cfg.ExternalRules[0]
	got := []string{r.Name.As, r.Resources.Overrides["1"].Resource, e.Name.As, e.MetricsQuery, e.LabelValueReplacements[0].Find, e.LabelValueReplacements[0].Replace}
	want := []string{"123", "0x1F", "1.50", "yes", "1e3", ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("values = %q, want %q", got, want)
	}
	if e.Resources.IsNamespaced() {
		t.Error("namespaced: no is not false")
	}
	wantWarnings := []string{ // loader's in field order, then validation's
		`rules[0].resources.overrides["1"]: YAML number key read as a string (its text as written); quote it to say so`,
		`rules[0].resources.overrides["1"].resource: YAML number read as the string "0x1F"; quote it to say so`,
		`rules[0].name.as: YAML number read as the string "123"; quote it to say so`,
		`externalRules[0].name.as: YAML number read as the string "1.50"; quote it to say so`,
		`externalRules[0].metricsQuery: YAML boolean read as the string "yes"; quote it to say so`,
		`externalRules[0].labelValueReplacements[0].find: YAML number read as the string "1e3"; quote it to say so`,
		`rules[0].resources.overrides["1"]: "1" is not a classic Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*): only series of a Prometheus with UTF-8 label names can have it`,
	}
	if got := warningStrings(cfg.Warnings()); !reflect.DeepEqual(got, wantWarnings) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantWarnings, "\n"))
	}
}

func warningStrings(ws []Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.String())
	}
	return out
}

// TestWarnings checks configs that prometheus-adapter loads and whose
// problems promgate reports as warnings rather than refusing them.
func TestWarnings(t *testing.T) {
	const okResource = "{containerQuery: a, nodeQuery: b, containerLabel: c}"
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{name: "none", in: "rules:\n- seriesQuery: up\nresourceRules:\n  cpu: " + okResource + "\n  memory: " + okResource + "\n"},
		{
			name: "resourceRules with only cpu",
			in:   "resourceRules:\n  cpu: " + okResource + "\n  window: 3m\n",
			want: []string{"resourceRules.memory: is not set: memory usage of pods and nodes cannot be served"},
		},
		{
			name: "empty resourceRules",
			in:   "resourceRules: {}\n",
			want: []string{
				"resourceRules.cpu: is not set: CPU usage of pods and nodes cannot be served",
				"resourceRules.memory: is not set: memory usage of pods and nodes cannot be served",
			},
		},
		{
			name: "partial resource rules",
			in:   "resourceRules:\n  cpu: {containerQuery: a, containerLabel: c}\n  memory: {nodeQuery: b, resources: {template: <<.Resource>>}}\n",
			want: []string{
				"resourceRules.cpu.nodeQuery: is empty: CPU usage of nodes cannot be served",
				"resourceRules.memory.containerQuery: is empty: memory usage of pods cannot be served",
				"resourceRules.memory.containerLabel: is empty: container names cannot be read from the series",
			},
		},
		{
			name: "override label only UTF-8 Prometheus can have",
			in:   "rules:\n- seriesQuery: up\n  resources: {overrides: {k8s.pod: {resource: pod}, pod: {resource: pod}}}\n",
			want: []string{`rules[0].resources.overrides["k8s.pod"]: "k8s.pod" is not a classic Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*): only series of a Prometheus with UTF-8 label names can have it`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := warningStrings(cfg.Warnings()); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
