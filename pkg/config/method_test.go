package config

import "testing"

// TestParseMethod: "" is series, the three names are themselves, anything
// else is an error naming the choices.
func TestParseMethod(t *testing.T) {
	for in, want := range map[string]Method{"": MethodSeries, "auto": MethodAuto, "index": MethodIndex, "series": MethodSeries} {
		if got, err := ParseMethod(in); err != nil || got != want {
			t.Errorf("ParseMethod(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseMethod("labels"); err == nil || err.Error() != `discovery method "labels": want auto, index or series` {
		t.Errorf("ParseMethod(labels): %v", err)
	}
}
