package workload

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Handler returns the control API of m, rooted at /control/:
//
//	POST   /control/http?namespace=N&app=A[&rps=R][&errorRatio=E]
//	DELETE /control/http?namespace=N&app=A
//	POST   /control/cpu?namespace=N&app=A&cpu=Q[&container=C]
//	DELETE /control/cpu?namespace=N&app=A[&container=C]
//	POST   /control/memory?namespace=N&app=A&memory=Q[&container=C]
//	DELETE /control/memory?namespace=N&app=A[&container=C]
//	POST   /control/hide?namespace=N&app=A[&container=C]
//	DELETE /control/hide?namespace=N&app=A[&container=C]
//	POST   /control/node?node=X[&cpu=Q][&memory=Q]
//	DELETE /control/node?node=X
//	POST   /control/queue?namespace=N&queue=Q&value=V
//	DELETE /control/queue?namespace=N&queue=Q
//	POST   /control/ingress?namespace=N&service=S&rps=R
//	DELETE /control/ingress?namespace=N&service=S
//	POST   /control/reset
//	GET    /control/state[?namespace=N][&app=A]
//
// Parameters come from the query string or a form body. Unknown parameters
// are rejected, so a misspelt one fails loudly. Answers are JSON; errors
// are {"error": "..."} with status 400.
func Handler(m *Model) http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, f func(p params) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			p, err := parseParams(r)
			if err == nil {
				var out any
				if out, err = f(p); err == nil {
					writeJSON(w, http.StatusOK, out)
					return
				}
			}
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		})
	}

	h("POST /control/http", func(p params) (any, error) {
		key, err := p.app("rps", "errorRatio")
		if err != nil {
			return nil, err
		}
		var ov HTTPOverride
		if s, ok := p.get("rps"); ok {
			v, err := parseRate(s)
			if err != nil {
				return nil, fmt.Errorf("rps: %w", err)
			}
			ov.RPS = &v
		}
		if s, ok := p.get("errorRatio"); ok {
			v, err := parseRatio(s)
			if err != nil {
				return nil, fmt.Errorf("errorRatio: %w", err)
			}
			ov.ErrorRatio = &v
		}
		if ov.RPS == nil && ov.ErrorRatio == nil {
			return nil, fmt.Errorf("give rps, errorRatio or both")
		}
		return matched(m.SetHTTP(key, ov)), nil
	})
	h("DELETE /control/http", func(p params) (any, error) {
		key, err := p.app()
		if err != nil {
			return nil, err
		}
		return matched(m.ClearHTTP(key)), nil
	})

	resource := func(name string, parse func(string) (int64, error), set func(AppKey, string, int64) int, unset func(AppKey, string) int) {
		h("POST /control/"+name, func(p params) (any, error) {
			key, err := p.app(name, "container")
			if err != nil {
				return nil, err
			}
			s, err := p.required(name)
			if err != nil {
				return nil, err
			}
			v, err := parse(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			c, _ := p.get("container")
			return matched(set(key, c, v)), nil
		})
		h("DELETE /control/"+name, func(p params) (any, error) {
			key, err := p.app("container")
			if err != nil {
				return nil, err
			}
			c, _ := p.get("container")
			return matched(unset(key, c)), nil
		})
	}
	resource("cpu", parseMilliCPU, m.SetCPU, m.ClearCPU)
	resource("memory", parseBytes, m.SetMemory, m.ClearMemory)

	hide := func(hidden bool) func(p params) (any, error) {
		return func(p params) (any, error) {
			key, err := p.app("container")
			if err != nil {
				return nil, err
			}
			c, _ := p.get("container")
			return matched(m.SetHidden(key, c, hidden)), nil
		}
	}
	h("POST /control/hide", hide(true))
	h("DELETE /control/hide", hide(false))

	h("POST /control/node", func(p params) (any, error) {
		if err := p.only("node", "cpu", "memory"); err != nil {
			return nil, err
		}
		name, err := p.required("node")
		if err != nil {
			return nil, err
		}
		var ov NodeOverride
		if s, ok := p.get("cpu"); ok {
			v, err := parseMilliCPU(s)
			if err != nil {
				return nil, fmt.Errorf("cpu: %w", err)
			}
			ov.MilliCPU = &v
		}
		if s, ok := p.get("memory"); ok {
			v, err := parseBytes(s)
			if err != nil {
				return nil, fmt.Errorf("memory: %w", err)
			}
			ov.Memory = &v
		}
		if ov.MilliCPU == nil && ov.Memory == nil {
			return nil, fmt.Errorf("give cpu, memory or both")
		}
		return map[string]bool{"nodeKnown": m.SetNode(name, ov)}, nil
	})
	h("DELETE /control/node", func(p params) (any, error) {
		if err := p.only("node"); err != nil {
			return nil, err
		}
		name, err := p.required("node")
		if err != nil {
			return nil, err
		}
		return map[string]bool{"nodeKnown": m.ClearNode(name)}, nil
	})

	h("POST /control/queue", func(p params) (any, error) {
		key, err := p.queue("value")
		if err != nil {
			return nil, err
		}
		s, err := p.required("value")
		if err != nil {
			return nil, err
		}
		v, err := parseRate(s)
		if err != nil {
			return nil, fmt.Errorf("value: %w", err)
		}
		m.SetQueue(key, v)
		return map[string]float64{"value": v}, nil
	})
	h("DELETE /control/queue", func(p params) (any, error) {
		key, err := p.queue()
		if err != nil {
			return nil, err
		}
		return map[string]bool{"existed": m.DeleteQueue(key)}, nil
	})

	h("POST /control/ingress", func(p params) (any, error) {
		key, err := p.ingress("rps")
		if err != nil {
			return nil, err
		}
		s, err := p.required("rps")
		if err != nil {
			return nil, err
		}
		v, err := parseRate(s)
		if err != nil {
			return nil, fmt.Errorf("rps: %w", err)
		}
		m.SetIngress(key, v)
		return map[string]float64{"rps": v}, nil
	})
	h("DELETE /control/ingress", func(p params) (any, error) {
		key, err := p.ingress()
		if err != nil {
			return nil, err
		}
		return map[string]bool{"existed": m.DeleteIngress(key)}, nil
	})

	h("POST /control/reset", func(p params) (any, error) {
		if err := p.only(); err != nil {
			return nil, err
		}
		m.Reset()
		return map[string]bool{"reset": true}, nil
	})
	h("GET /control/state", func(p params) (any, error) {
		if err := p.only("namespace", "app"); err != nil {
			return nil, err
		}
		ns, _ := p.get("namespace")
		app, _ := p.get("app")
		return m.Snapshot(Filter{Namespace: ns, App: app}), nil
	})
	return mux
}

// matched is the answer of the calls that select pods by app.
func matched(n int) map[string]int { return map[string]int{"matchedPods": n} }

// params are a request's parameters, each given at most once.
type params map[string]string

// parseParams reads the query and form parameters of r.
func parseParams(r *http.Request) (params, error) {
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	p := params{}
	for k, v := range r.Form {
		if len(v) != 1 {
			return nil, fmt.Errorf("parameter %q given %d times", k, len(v))
		}
		p[k] = v[0]
	}
	return p, nil
}

func (p params) get(k string) (string, bool) {
	v, ok := p[k]
	return v, ok
}

// required returns a parameter that must be present and non-empty.
func (p params) required(k string) (string, error) {
	if v := p[k]; v != "" {
		return v, nil
	}
	return "", fmt.Errorf("parameter %q is required", k)
}

// only fails if p holds a parameter not in allowed.
func (p params) only(allowed ...string) error {
	for k := range p {
		if !slices.Contains(allowed, k) {
			return fmt.Errorf("unknown parameter %q (allowed: %s)", k, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// app reads namespace and app, allowing the extra parameters.
func (p params) app(extra ...string) (AppKey, error) {
	if err := p.only(append([]string{"namespace", "app"}, extra...)...); err != nil {
		return AppKey{}, err
	}
	ns, err := p.required("namespace")
	if err != nil {
		return AppKey{}, err
	}
	app, err := p.required("app")
	if err != nil {
		return AppKey{}, err
	}
	return AppKey{Namespace: ns, App: app}, nil
}

// queue reads namespace and queue, allowing the extra parameters.
func (p params) queue(extra ...string) (QueueKey, error) {
	if err := p.only(append([]string{"namespace", "queue"}, extra...)...); err != nil {
		return QueueKey{}, err
	}
	ns, err := p.required("namespace")
	if err != nil {
		return QueueKey{}, err
	}
	q, err := p.required("queue")
	if err != nil {
		return QueueKey{}, err
	}
	return QueueKey{Namespace: ns, Queue: q}, nil
}

func (p params) ingress(extra ...string) (IngressKey, error) {
	if err := p.only(append([]string{"namespace", "service"}, extra...)...); err != nil {
		return IngressKey{}, err
	}
	ns, err := p.required("namespace")
	if err != nil {
		return IngressKey{}, err
	}
	svc, err := p.required("service")
	if err != nil {
		return IngressKey{}, err
	}
	return IngressKey{Namespace: ns, Service: svc}, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		code = http.StatusInternalServerError
		b.Reset()
		b.WriteString(`{"error": ` + strconv.Quote(err.Error()) + "}\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}
