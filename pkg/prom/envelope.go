package prom

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
)

// envelope is what every answer of the Prometheus HTTP API holds around
// its data: {"status":"success"|"error","errorType":...,"error":...,
// "warnings":[...]}, and VictoriaMetrics' "isPartial". Its fields are
// exported for encoding/json, which tests decode into it for reference.
type envelope struct {
	Status, ErrorType, Error string
	Warnings                 []string
	IsPartial                bool
}

// scanField reads the value of the envelope's key (already folded to lower
// case, see foldKey) from d as encoding/json reads it into envelope: null
// leaves a field as it is, a repeated key replaces. It reports whether key
// is one of the envelope's; if not, nothing was read.
func (e *envelope) scanField(d *scanner, key string) bool {
	str := func(old string) string {
		if d.null() {
			return old
		}
		return d.str()
	}
	switch key {
	case "status":
		e.Status = str(e.Status)
	case "errortype":
		e.ErrorType = str(e.ErrorType)
	case "error":
		e.Error = str(e.Error)
	case "warnings":
		e.Warnings = nil
		if d.null() {
			break
		}
		e.Warnings = []string{}
		d.array(func() { e.Warnings = append(e.Warnings, str("")) })
	case "ispartial":
		if !d.null() {
			e.IsPartial = d.boolean()
		}
	default:
		return false
	}
	return true
}

// decodeEnvelope reads the envelope of body, skipping its data: the
// message of an error answer. It reports false when body is not a JSON
// object.
func decodeEnvelope(body []byte) (envelope, bool) {
	d := &scanner{b: body}
	var e envelope
	d.object(func(key string) {
		if !e.scanField(d, foldKey(key)) {
			d.skip()
		}
	})
	d.end()
	return e, d.err == nil
}

// partial returns why the answer lacks data, or "" if it is complete. Any
// warning is taken as missing data (Thanos and Mimir report unavailable
// stores, Prometheus failed remote reads that way), except PromQL's own
// annotations, which describe the query, not the data.
func (e envelope) partial() string {
	var w []string
	if e.IsPartial {
		w = append(w, "isPartial is true")
	}
	for _, s := range e.Warnings {
		if !strings.HasPrefix(s, "PromQL warning: ") && !strings.HasPrefix(s, "PromQL info: ") {
			w = append(w, s)
		}
	}
	return strings.Join(w, "; ")
}

// queryStatus is the error of a 2xx query answer whose status is not
// "success", worded as client_golang's v1 API words it: BadStatus wrapping
// a *v1.Error of the answer's type, or InvalidResponse wrapping one of
// type bad_response.
func (e envelope) queryStatus() error {
	switch e.Status {
	case "success":
		return nil
	case "error":
		return withKind(BadStatus, &v1.Error{Type: v1.ErrorType(e.ErrorType), Msg: e.Error})
	case "":
		return badResponse(errors.New(`the answer has no "status"`))
	default:
		return badResponse(fmt.Errorf("the answer's status is %q, want success", e.Status))
	}
}

// indexStatus is the error of a series, label names or label values
// answer (status code code) whose status is not "success": BadStatus for
// "status":"error" or a non-2xx code, with the answer's "errorType: error"
// as text (or "HTTP <code>" without one), InvalidResponse otherwise.
func (e envelope) indexStatus(code int) error {
	if e.Status == "error" || code/100 != 2 {
		msg := e.Error
		if msg == "" {
			msg = "HTTP " + strconv.Itoa(code)
		}
		if e.ErrorType != "" {
			msg = e.ErrorType + ": " + msg
		}
		return &KindError{Kind: BadStatus, Code: code, Err: errors.New(msg)}
	}
	switch e.Status {
	case "success":
		return nil
	case "":
		return withKind(InvalidResponse, errors.New(`response has no "status"`))
	default:
		return withKind(InvalidResponse, fmt.Errorf("response status is %q, want success", e.Status))
	}
}

// badResponse is an answer that is not the JSON the API specifies, as
// client_golang's v1 API reports it.
func badResponse(err error) error {
	return withKind(InvalidResponse, &v1.Error{Type: v1.ErrBadResponse, Msg: err.Error()})
}

// queryHTTPError is the error of a non-2xx query answer, as client_golang's
// v1 API reports it: Prometheus' own JSON error for 400 and 422, otherwise
// the status code, with the start of the body as the *v1.Error's Detail.
func queryHTTPError(code int, body []byte) error {
	generic := func() error {
		typ, msg := v1.ErrBadResponse, fmt.Sprintf("bad response code %d", code)
		switch code / 100 {
		case 4:
			typ, msg = v1.ErrClient, fmt.Sprintf("client error: %d", code)
		case 5:
			typ, msg = v1.ErrServer, fmt.Sprintf("server error: %d", code)
		}
		return &v1.Error{Type: typ, Msg: msg, Detail: string(body)}
	}
	// Prometheus answers its own errors with 400 or 422 and a JSON body.
	if code != http.StatusBadRequest && code != http.StatusUnprocessableEntity {
		return generic()
	}
	var env struct {
		Status    string       `json:"status"`
		ErrorType v1.ErrorType `json:"errorType"`
		Error     string       `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return generic()
	}
	if env.Status == "success" {
		return &v1.Error{Type: v1.ErrBadResponse, Msg: "inconsistent body for response code"}
	}
	if env.ErrorType == "" {
		env.ErrorType = v1.ErrClient
	}
	if env.Error == "" {
		env.Error = fmt.Sprintf("client error: %d", code)
	}
	return &v1.Error{Type: env.ErrorType, Msg: env.Error}
}

// errorText is the start of an error answer's text, at most 512 bytes of
// it.
func errorText(s string) string {
	text := strings.TrimSpace(s)
	if len(text) > 512 {
		text = text[:512]
	}
	return text
}
