package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// malformedSecrets are configurations with a credential where the schema
// wants another kind of value, the credential, and the field each error
// must name.
var malformedSecrets = []struct{ name, config, secret, field string }{
	{"header as a string", "  http:\n    http_headers:\n      X-Token: hunter2-t0ken\n", "hunter2-t0ken", `backends[0].http.http_headers["X-Token"]`},
	{"basic_auth as user:password", "  http: {basic_auth: admin:hunter2-t0ken}\n", "admin:hunter2-t0ken", "backends[0].http.basic_auth"},
	{"authorization as a header line", "  http: {authorization: hunter2-t0ken}\n", "hunter2-t0ken", "backends[0].http.authorization"},
	{"password in a bad proxy_url", "  http: {proxy_url: 'http://u:hunter2-t0ken%zz@proxy:3128'}\n", "hunter2-t0ken", "backends[0].http.proxy_url"},
}

// quotes reports whether msg holds secret, or the seven characters of it
// that yaml.v2 quotes of a value longer than ten.
func quotes(msg, secret string) bool {
	return strings.Contains(msg, secret) || strings.Contains(msg, secret[:7])
}

func writeBackendConfig(t *testing.T, path, http string) {
	t.Helper()
	data := "backends:\n- name: b\n  url: https://b:9090\n" + http
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCheckQuotesNoSecret: what `promgate check` prints about a malformed
// credential names the field and quotes nothing of the credential.
func TestCheckQuotesNoSecret(t *testing.T) {
	for _, tt := range malformedSecrets {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "promgate.yaml")
			writeBackendConfig(t, path, tt.config)
			cmd := newCheckCommand()
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetArgs([]string{path})
			err := cmd.Execute()
			if err == nil {
				t.Fatalf("check passed:\n%s", out.String())
			}
			printed := out.String() + err.Error()
			if quotes(printed, tt.secret) {
				t.Errorf("check prints the credential:\n%s", printed)
			}
			if !strings.Contains(printed, tt.field) {
				t.Errorf("check does not name %s:\n%s", tt.field, printed)
			}
		})
	}
}
