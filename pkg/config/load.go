package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Load reads and parses the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// rawConfig defers decoding each rule so that errors can name it.
type rawConfig struct {
	Rules         []json.RawMessage `json:"rules"`
	ExternalRules []json.RawMessage `json:"externalRules"`
	ResourceRules json.RawMessage   `json:"resourceRules"`
}

// Parse parses a YAML (or JSON) configuration strictly: unknown fields and
// duplicate keys are errors, and every error names the rule and field at fault.
// The result is structurally validated (see Validate).
func Parse(data []byte) (*Config, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return &Config{}, nil
	}
	var raw rawConfig
	if err := decodeStrict(js, &raw); err != nil {
		return nil, err
	}
	cfg := &Config{}
	var errs []error
	decodeRules := func(field string, in []json.RawMessage) []DiscoveryRule {
		if len(in) == 0 {
			return nil
		}
		out := make([]DiscoveryRule, len(in))
		for i, r := range in {
			if err := decodeStrict(r, &out[i]); err != nil {
				errs = append(errs, fmt.Errorf("%s[%d]: %w", field, i, err))
			}
		}
		return out
	}
	cfg.Rules = decodeRules("rules", raw.Rules)
	cfg.ExternalRules = decodeRules("externalRules", raw.ExternalRules)
	if len(raw.ResourceRules) > 0 && !bytes.Equal(raw.ResourceRules, []byte("null")) {
		cfg.ResourceRules = &ResourceRules{}
		if err := decodeStrict(raw.ResourceRules, cfg.ResourceRules); err != nil {
			errs = append(errs, fmt.Errorf("resourceRules: %w", err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decodeStrict decodes data into into, matching field names case-sensitively
// (encoding/json would accept "SeriesQuery" for seriesQuery, and let it
// silently override a seriesQuery key), rejecting unknown and duplicate fields.
func decodeStrict(data []byte, into any) error {
	strict, err := kjson.UnmarshalStrict(data, into)
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	return errors.Join(strict...)
}
