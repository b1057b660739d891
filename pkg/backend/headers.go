package backend

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// FlagHeader is the flag whose values ParseHeaders parses.
const FlagHeader = "--prometheus-header"

// ParseHeaders parses Name=Value pairs, the values of --prometheus-header,
// into the default backend's headers (prom.Options.Headers): names are
// canonical, so that repeated headers keep every value in order. Errors
// never show a value: a malformed one may well be an API key.
func ParseHeaders(in []string) (map[string][]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := map[string][]string{}
	var errs []error
	for i, h := range in {
		k, v, ok := strings.Cut(h, "=")
		k = strings.TrimSpace(k)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s #%d: want Name=Value (not shown, it may hold a secret)", FlagHeader, i+1))
		case !validHeaderName(k):
			errs = append(errs, fmt.Errorf("%s #%d: the text before \"=\" is not a header name (a space or colon?); want Name=Value (not shown, it may hold a secret)", FlagHeader, i+1))
		case strings.ContainsAny(v, "\r\n\x00"):
			errs = append(errs, fmt.Errorf("%s #%d (%s): the value has a line break or NUL (value not shown)", FlagHeader, i+1, k))
		default:
			k = http.CanonicalHeaderKey(k)
			out[k] = append(out[k], v)
		}
	}
	return out, errors.Join(errs...)
}

// validHeaderName reports whether s is an HTTP token (RFC 9110, 5.6.2).
func validHeaderName(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(c rune) bool {
		return !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.ContainsRune("!#$%&'*+-.^_`|~", c))
	})
}
