package explain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/emicklei/go-restful/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Group is the API group whose versions serve the explain resource.
const Group = "custom.metrics.k8s.io"

// Handler serves e's reports for GET requests: text/plain, or JSON with
// ?format=json. A request that cannot be explained is a 400 Status.
func Handler(e *Explainer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			writeStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "explain answers GET only")
			return
		}
		q := r.URL.Query()
		format := q.Get("format")
		if format != "" && format != "text" && format != "json" {
			writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("format=%q: want text or json", format))
			return
		}
		req, err := ParseRequest(q)
		if err != nil {
			writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
			return
		}
		rep, err := e.Explain(r.Context(), req)
		if err != nil {
			writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
			return
		}
		var b bytes.Buffer
		if format == "json" {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(&b)
			enc.SetIndent("", "  ")
			err = enc.Encode(rep)
		} else {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			err = rep.WriteText(&b)
		}
		if err != nil {
			writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(b.Bytes())
	})
}

// writeStatus writes a metav1.Status, which kubectl prints as
// "Error from server (Reason): message".
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg,
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(st)
}

// Install serves h at explain under every version of
// custom.metrics.k8s.io that c has a WebService for, and returns the paths
// it serves.
//
// The route goes into the go-restful WebService the custom metrics API
// installed, not into the server's NonGoRestfulMux: k8s.io/apiserver's
// director hands every path under a WebService's root to go-restful, so a
// NonGoRestfulMux handler for /apis/custom.metrics.k8s.io/v1beta2/explain
// would never be reached. One static segment is more specific than the
// custom metrics API's routes (three and more segments), so it shadows
// none of them. It must run before the server's PrepareRun, which builds
// the OpenAPI documents from the routes.
func Install(c *restful.Container, h http.Handler) ([]string, error) {
	var paths []string
	for _, ws := range c.RegisteredWebServices() {
		root := ws.RootPath()
		if !strings.HasPrefix(root, "/apis/"+Group+"/") || strings.Count(root, "/") != 3 {
			continue
		}
		ws.Route(ws.GET("/explain").
			Operation("getExplain").
			Doc("explain which rule serves a metric, or why none does, and the PromQL a request sends").
			Produces("text/plain", "application/json", "*/*").
			Param(ws.QueryParameter("metric", "the metric name; without it, every rule's discovery")).
			Param(ws.QueryParameter("resource", "the resource the metric describes, e.g. pods or deployments.apps")).
			Param(ws.QueryParameter("external", "explain an external metric (true or false)")).
			Param(ws.QueryParameter("namespace", "the request's namespace")).
			Param(ws.QueryParameter("name", "the object, or * for all")).
			Param(ws.QueryParameter("labelSelector", "objects (custom) or series (external) selector")).
			Param(ws.QueryParameter("metricLabelSelector", "series selector of a custom metric")).
			Param(ws.QueryParameter("run", "run the query and count its values (true or false)")).
			Param(ws.QueryParameter("format", "text (default) or json")).
			To(func(req *restful.Request, resp *restful.Response) { h.ServeHTTP(resp.ResponseWriter, req.Request) }))
		paths = append(paths, root+"/explain")
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no %s API is installed to serve explain under", Group)
	}
	return paths, nil
}
