package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// FieldError is a configuration error located by its path, such as
// "rules[2].name.matches".
type FieldError struct {
	Path string
	Err  error
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

// Fieldf returns a FieldError for path with a formatted message.
func Fieldf(path, format string, args ...any) *FieldError {
	return &FieldError{Path: path, Err: fmt.Errorf(format, args...)}
}

// Warning is something a configuration says that promgate loads, as
// prometheus-adapter does, but that probably does not do what its author
// meant, or that promgate cannot serve.
type Warning struct {
	// Path locates it, such as "resourceRules.memory" or "rules[0].name.as".
	Path    string
	Message string
}

func (w Warning) String() string { return w.Path + ": " + w.Message }

// Warnings returns c's warnings: those of the loader (YAML numbers and
// booleans read as strings), then those of validation, in config order.
// Problems that stop promgate are Validate's errors, not warnings.
func (c *Config) Warnings() []Warning {
	out := append([]Warning(nil), c.loadWarnings...)
	for i, r := range c.Rules {
		out = append(out, r.Resources.warnings(fmt.Sprintf("rules[%d].resources", i))...)
	}
	for i, r := range c.ExternalRules {
		out = append(out, r.Resources.warnings(fmt.Sprintf("externalRules[%d].resources", i))...)
	}
	if rr := c.ResourceRules; rr != nil {
		out = append(out, rr.CPU.warnings("resourceRules.cpu", "CPU")...)
		out = append(out, rr.Memory.warnings("resourceRules.memory", "memory")...)
		if !rr.Swap.IsZero() {
			out = append(out, rr.Swap.warnings("resourceRules.swap", "swap")...)
		}
	}
	return out
}

// IsZero reports whether nothing of the rule is set, as for a resource
// (cpu, memory or swap) that resourceRules leaves out.
func (r ResourceRule) IsZero() bool {
	return r.ContainerQuery == "" && r.NodeQuery == "" && r.ContainerLabel == "" &&
		r.Resources.Template == "" && len(r.Resources.Overrides) == 0 && r.Resources.Namespaced == nil
}

// Validate checks what can be checked without a cluster or Prometheus:
// required fields, exclusive fields and regular expressions. Templates and
// PromQL are checked when rules are compiled (package rules). What
// prometheus-adapter loads is valid: questionable parts are Warnings.
func (c *Config) Validate() error {
	var errs []error
	seen := map[string]string{}
	for i, b := range c.Backends {
		path := fmt.Sprintf("backends[%d]", i)
		errs = append(errs, b.validate(path)...)
		if prev, ok := seen[b.Name]; ok && b.Name != "" {
			errs = append(errs, Fieldf(path+".name", "%q is also the name of %s", b.Name, prev))
		}
		seen[b.Name] = path
	}
	known := c.BackendNames()
	checkBackend := func(path, name string) {
		if name != "" && !slices.Contains(known, name) {
			errs = append(errs, Fieldf(path+".backend", "unknown backend %q (backends: %s)", name, strings.Join(known, ", ")))
		}
	}
	for i, r := range c.Rules {
		errs = append(errs, r.validate(fmt.Sprintf("rules[%d]", i))...)
		checkBackend(fmt.Sprintf("rules[%d]", i), r.Backend)
	}
	for i, r := range c.ExternalRules {
		errs = append(errs, r.validate(fmt.Sprintf("externalRules[%d]", i))...)
		checkBackend(fmt.Sprintf("externalRules[%d]", i), r.Backend)
	}
	if rr := c.ResourceRules; rr != nil {
		checkBackend("resourceRules", rr.Backend)
		errs = append(errs, rr.CPU.validate("resourceRules.cpu")...)
		errs = append(errs, rr.Memory.validate("resourceRules.memory")...)
		errs = append(errs, rr.Swap.validate("resourceRules.swap")...)
		if time.Duration(rr.Window) < 0 {
			errs = append(errs, Fieldf("resourceRules.window", "must not be negative"))
		}
	}
	return errors.Join(errs...)
}

func (r DiscoveryRule) validate(path string) []error {
	var errs []error
	if r.SeriesQuery == "" {
		errs = append(errs, Fieldf(path+".seriesQuery", "is required"))
	}
	for j, f := range r.SeriesFilters {
		fp := fmt.Sprintf("%s.seriesFilters[%d]", path, j)
		switch {
		case f.Is != "" && f.IsNot != "":
			errs = append(errs, Fieldf(fp, "set only one of is and isNot"))
		case f.Is == "" && f.IsNot == "":
			errs = append(errs, Fieldf(fp, "set one of is or isNot"))
		case f.Is != "":
			errs = append(errs, checkRegex(fp+".is", f.Is)...)
		default:
			errs = append(errs, checkRegex(fp+".isNot", f.IsNot)...)
		}
	}
	if r.Name.Matches != "" {
		if re, err := regexp.Compile(r.Name.Matches); err != nil {
			errs = append(errs, Fieldf(path+".name.matches", "invalid regular expression %q: %v", r.Name.Matches, err))
		} else if r.Name.As == "" && re.NumSubexp() > 1 {
			errs = append(errs, Fieldf(path+".name.as", "is required when name.matches %q has more than one capture group", r.Name.Matches))
		}
	}
	errs = append(errs, r.Resources.validate(path+".resources")...)
	for j, lr := range r.LabelValueReplacements {
		if lr.Find == "" {
			errs = append(errs, Fieldf(fmt.Sprintf("%s.labelValueReplacements[%d].find", path, j), "is required"))
		}
	}
	return errs
}

func (m ResourceMapping) validate(path string) []error {
	var errs []error
	for _, l := range sortedKeys(m.Overrides) {
		if m.Overrides[l].Resource == "" {
			errs = append(errs, Fieldf(fmt.Sprintf("%s.overrides[%q].resource", path, l), "is required"))
		}
		if l == "" || !utf8.ValidString(l) {
			errs = append(errs, Fieldf(fmt.Sprintf("%s.overrides[%q]", path, l), "%q is not a valid Prometheus label name", l))
		}
	}
	return errs
}

func (m ResourceMapping) warnings(path string) []Warning {
	var out []Warning
	for _, l := range sortedKeys(m.Overrides) {
		if l != "" && utf8.ValidString(l) && !labelNameRE.MatchString(l) {
			out = append(out, Warning{Path: fmt.Sprintf("%s.overrides[%q]", path, l),
				Message: fmt.Sprintf("%q is not a classic Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*): only series of a Prometheus with UTF-8 label names can have it", l)})
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (r ResourceRule) validate(path string) []error {
	return r.Resources.validate(path + ".resources")
}

// warnings says what of one resource (what: "CPU", "memory", "swap") cannot be
// served. prometheus-adapter loads such rules; its answers then fail.
func (r ResourceRule) warnings(path, what string) []Warning {
	if r.IsZero() {
		return []Warning{{Path: path, Message: fmt.Sprintf("is not set: %s usage of pods and nodes cannot be served", what)}}
	}
	var out []Warning
	if r.ContainerQuery == "" {
		out = append(out, Warning{Path: path + ".containerQuery", Message: fmt.Sprintf("is empty: %s usage of pods cannot be served", what)})
	}
	if r.NodeQuery == "" {
		out = append(out, Warning{Path: path + ".nodeQuery", Message: fmt.Sprintf("is empty: %s usage of nodes cannot be served", what)})
	}
	if r.ContainerLabel == "" {
		out = append(out, Warning{Path: path + ".containerLabel", Message: "is empty: container names cannot be read from the series"})
	}
	return append(out, r.Resources.warnings(path+".resources")...)
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func checkRegex(path, expr string) []error {
	if _, err := regexp.Compile(expr); err != nil {
		return []error{Fieldf(path, "invalid regular expression %q: %v", expr, err)}
	}
	return nil
}
