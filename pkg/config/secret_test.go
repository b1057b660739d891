package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	commoncfg "github.com/prometheus/common/config"
	yaml "go.yaml.in/yaml/v2"
)

// leaked reports what of secret msg contains: the whole of it, or the
// seven characters yaml.v2 quotes of a longer value.
func leaked(msg, secret string) string {
	if strings.Contains(msg, secret) {
		return secret
	}
	if len(secret) > 10 && strings.Contains(msg, secret[:7]) {
		return secret[:7]
	}
	return ""
}

// TestDecodeErrorsQuoteNoSecret writes credentials where the schema wants
// another kind of value, in every part of a backend's http client config
// where one goes: the error names the field and the line, and quotes
// nothing of the credential (yaml.v2's own message quotes up to ten
// characters of it). The error is what the log, `promgate check` and the
// Event of a refused reload show.
func TestDecodeErrorsQuoteNoSecret(t *testing.T) {
	const head = "backends:\n- name: b\n  url: https://b:9090\n  http:\n" // http's fields are on line 5
	tests := []struct {
		name, http, secret, want string
	}{
		{"header as a string", "    http_headers: Bearer eyJ0eXAi0iJKV1Qi\n", "Bearer eyJ0eXAi0iJKV1Qi",
			`backends[0].http.http_headers: line 5: expected a mapping, got a string`},
		{"header value as a string", "    http_headers:\n      X-Token: hunter2-t0ken\n", "hunter2-t0ken",
			`backends[0].http.http_headers["X-Token"]: line 6: expected a mapping, got a string`},
		{"short header value", "    http_headers:\n      X-Token: pa55w0rd\n", "pa55w0rd",
			`backends[0].http.http_headers["X-Token"]: line 6: expected a mapping, got a string`},
		{"header secrets as a string", "    http_headers:\n      X-Token: {secrets: hunter2-t0ken}\n", "hunter2-t0ken",
			`backends[0].http.http_headers["X-Token"].secrets: line 6: expected a list, got a string`},
		{"header values as a string", "    http_headers:\n      X-Scope-OrgID: {values: hunter2-t0ken}\n", "hunter2-t0ken",
			`backends[0].http.http_headers["X-Scope-OrgID"].values: line 6: expected a list, got a string`},
		{"basic_auth as user:password", "    basic_auth: admin:hunter2\n", "admin:hunter2",
			`backends[0].http.basic_auth: line 5: expected a mapping, got a string`},
		{"authorization as a header line", "    authorization: Bearer hunter2-t0ken\n", "Bearer hunter2-t0ken",
			`backends[0].http.authorization: line 5: expected a mapping, got a string`},
		{"authorization in a list", "    authorization:\n    - hunter2-t0ken\n", "hunter2-t0ken",
			`backends[0].http.authorization: line 6: expected a mapping, got a list`},
		{"oauth2 as a string", "    oauth2: hunter2-client-secret\n", "hunter2-client-secret",
			`backends[0].http.oauth2: line 5: expected a mapping, got a string`},
		{"oauth2 endpoint_params as a string", "    oauth2: {client_id: a, client_secret: x, token_url: 'https://t', endpoint_params: hunter2-t0ken}\n", "hunter2-t0ken",
			`backends[0].http.oauth2.endpoint_params: line 5: expected a mapping, got a string`},
		{"oauth2 scopes as a string", "    oauth2: {client_id: a, client_secret: x, token_url: 'https://t', scopes: hunter2-t0ken}\n", "hunter2-t0ken",
			`backends[0].http.oauth2.scopes: line 5: expected a list, got a string`},
		{"tls_config as a key", "    tls_config: hunter2-private-key\n", "hunter2-private-key",
			`backends[0].http.tls_config: line 5: expected a mapping, got a string`},
		{"proxy_connect_header as a string", "    proxy_url: http://proxy:3128\n    proxy_connect_header: {Proxy-Authorization: Basic aHVudGVyMg==}\n", "Basic aHVudGVyMg==",
			`backends[0].http.proxy_connect_header["Proxy-Authorization"]: line 6: expected a list, got a string`},
		{"credential in a boolean", "    follow_redirects: hunter2-t0ken\n", "hunter2-t0ken",
			`backends[0].http.follow_redirects: line 5: expected true or false, got a string`},
		{"credential in a TLS version", "    tls_config: {min_version: hunter2-t0ken}\n", "hunter2-t0ken",
			`backends[0].http.tls_config.min_version: unknown TLS version`},
		{"proxy_url with a bad escape in the password", "    proxy_url: http://user:hunter2%zz@proxy:3128\n", "hunter2",
			`backends[0].http.proxy_url: not a valid URL`},
		{"proxy_url with a bad port", "    proxy_url: http://user:hunter2@proxy:31x8\n", "hunter2",
			`backends[0].http.proxy_url: not a valid URL`},
		{"http as a string", "    hunter2-t0ken\n", "hunter2-t0ken",
			`backends[0].http: line 5: expected a mapping, got a string`},
		{"second backend", "    http_headers: {X-A: {values: [a]}}\n- name: c\n  url: https://c\n  http: {http_headers: {X-B: hunter2-t0ken}}\n", "hunter2-t0ken",
			`backends[1].http.http_headers["X-B"]: line 8: expected a mapping, got a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(head + tt.http))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if s := leaked(err.Error(), tt.secret); s != "" {
				t.Errorf("the error quotes %q of the credential:\n%v", s, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

// TestDecodeErrorsQuoteNoValue puts a credential, as a string, in every
// field of prometheus/common's HTTP client configuration (the fields of
// its fields, and of a map's value, too) and a list in every field: no
// decoding error quotes the credential, whatever field expects what.
func TestDecodeErrorsQuoteNoValue(t *testing.T) {
	const secret = "hunter2-t0ken"
	var paths [][]string
	var walk func(t reflect.Type, path []string, depth int)
	walk = func(t reflect.Type, path []string, depth int) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case depth > 4:
			return
		case t.Kind() == reflect.Map:
			walk(t.Elem(), append(path, "X-Key"), depth+1)
			return
		case t.Kind() != reflect.Struct:
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || (name == "" && !strings.Contains(opts, "inline")) {
				continue
			}
			p := path
			if !strings.Contains(opts, "inline") {
				p = append(append([]string(nil), path...), name)
				paths = append(paths, p)
			}
			walk(f.Type, p, depth+1)
		}
	}
	walk(reflect.TypeFor[commoncfg.HTTPClientConfig](), nil, 0)
	if len(paths) < 30 {
		t.Fatalf("found only %d fields: %q", len(paths), paths)
	}
	nest := func(path []string, v any) any {
		for i := len(path) - 1; i >= 0; i-- {
			v = map[string]any{path[i]: v}
		}
		return v
	}
	for _, p := range paths {
		for _, v := range []any{secret, []string{secret}, map[string]string{"k": secret}} {
			name := fmt.Sprintf("%s=%T", strings.Join(p, "."), v)
			doc, err := yaml.Marshal(map[string]any{"backends": []any{map[string]any{"name": "b", "url": "https://b", "http": nest(p, v)}}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(doc)
			if err == nil {
				continue // the field takes it
			}
			if s := leaked(err.Error(), secret); s != "" {
				t.Errorf("%s: the error quotes %q of the credential:\n%v", name, s, err)
			} else if !strings.Contains(err.Error(), "backends[0]") {
				t.Errorf("%s: the error does not name the backend:\n%v", name, err)
			}
		}
	}
}
