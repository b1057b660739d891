package config

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"time"
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

// Validate checks what can be checked without a cluster or Prometheus:
// required fields, exclusive fields and regular expressions. Templates and
// PromQL are checked when rules are compiled (package rules).
func (c *Config) Validate() error {
	var errs []error
	for i, r := range c.Rules {
		errs = append(errs, r.validate(fmt.Sprintf("rules[%d]", i))...)
	}
	for i, r := range c.ExternalRules {
		errs = append(errs, r.validate(fmt.Sprintf("externalRules[%d]", i))...)
	}
	if rr := c.ResourceRules; rr != nil {
		errs = append(errs, rr.CPU.validate("resourceRules.cpu")...)
		errs = append(errs, rr.Memory.validate("resourceRules.memory")...)
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
	labels := make([]string, 0, len(m.Overrides))
	for l := range m.Overrides {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, l := range labels {
		if m.Overrides[l].Resource == "" {
			errs = append(errs, Fieldf(fmt.Sprintf("%s.overrides[%q].resource", path, l), "is required"))
		}
		if !labelNameRE.MatchString(l) {
			errs = append(errs, Fieldf(fmt.Sprintf("%s.overrides[%q]", path, l), "%q is not a valid Prometheus label name", l))
		}
	}
	return errs
}

func (r ResourceRule) validate(path string) []error {
	var errs []error
	if r.ContainerQuery == "" {
		errs = append(errs, Fieldf(path+".containerQuery", "is required"))
	}
	if r.NodeQuery == "" {
		errs = append(errs, Fieldf(path+".nodeQuery", "is required"))
	}
	if r.ContainerLabel == "" {
		errs = append(errs, Fieldf(path+".containerLabel", "is required"))
	}
	errs = append(errs, r.Resources.validate(path+".resources")...)
	return errs
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func checkRegex(path, expr string) []error {
	if _, err := regexp.Compile(expr); err != nil {
		return []error{Fieldf(path, "invalid regular expression %q: %v", expr, err)}
	}
	return nil
}
