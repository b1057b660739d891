package backend

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseHeaders(t *testing.T) {
	const secret = "s3cr3t-api-key"
	for _, tt := range []struct {
		name string
		in   []string
		want map[string][]string
		errs []string // substrings of the error, in order
	}{
		{name: "none"},
		{
			name: "canonical names keep every value in order",
			in:   []string{"X-Scope-OrgID=a", "x-extra=1", " X-Extra =2=3", "X-Empty="},
			want: map[string][]string{"X-Scope-Orgid": {"a"}, "X-Extra": {"1", "2=3"}, "X-Empty": {""}},
		},
		{name: "no =", in: []string{"X-Api-Key: " + secret}, errs: []string{"--prometheus-header #1: want Name=Value (not shown"}},
		{name: "name with a space", in: []string{"Authorization: Bearer " + secret + "=="}, errs: []string{`--prometheus-header #1: the text before "=" is not a header name`}},
		{name: "empty name", in: []string{"=" + secret}, errs: []string{"--prometheus-header #1: the text before"}},
		{
			name: "line break",
			in:   []string{"X-Scope-OrgID=a", "X-Api-Key=" + secret + "\r\nX: y"},
			errs: []string{"--prometheus-header #2 (X-Api-Key): the value has a line break or NUL (value not shown)"},
		},
		{name: "NUL", in: []string{"X-Api-Key=" + secret + "\x00"}, errs: []string{"--prometheus-header #1 (X-Api-Key): the value has a line break or NUL"}},
		{
			name: "every error",
			in:   []string{"bad", "X-Ok=1", "a b=" + secret},
			errs: []string{"--prometheus-header #1:", "--prometheus-header #3:"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHeaders(tt.in)
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("headers = %q, want %q", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.errs)
			}
			msg := err.Error()
			if strings.Contains(msg, secret) {
				t.Errorf("the error shows the secret: %q", msg)
			}
			lines := strings.Split(msg, "\n")
			if len(lines) != len(tt.errs) {
				t.Fatalf("errors %q, want %d: %q", lines, len(tt.errs), tt.errs)
			}
			for i, w := range tt.errs {
				if !strings.Contains(lines[i], w) {
					t.Errorf("error %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
		})
	}
}
