package explain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/emicklei/go-restful/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"
)

// Group is the API group whose versions serve the explain resource.
const Group = "custom.metrics.k8s.io"

// Handler serves e's reports for GET requests: text/plain, or JSON with
// ?format=json. A request that cannot be explained is a 400 Status.
//
// The server's filters authorized the request for explain (list on
// resource explain); Handler authorizes, with a and the request's user,
// what explain would tell: the reads of e.Access, as kube-apiserver asks
// them of a real read of the metric. A read a does not allow (deny or no
// opinion) is a 403 Status worded as kube-apiserver's; an error of a for a
// read it does not allow is a 500, as in kube-apiserver's authorization
// filter. The report holds the series of every namespace (probes,
// dropped-series examples) only when a allows Access.Wide too, and
// otherwise says they were left out. An explanation that waited in vain
// for its turn to ask the backends (ErrBusy) is a 429 with Retry-After.
// a must not be nil.
func Handler(e *Explainer, a Authorizer) http.Handler {
	if a == nil {
		panic("explain.Handler: nil Authorizer")
	}
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
		scope, ok := authorize(w, r, a, e.Access(req, requestVersion(r.Context())))
		if !ok {
			return
		}
		rep, err := e.Scoped(r.Context(), req, scope)
		switch {
		case errors.Is(err, ErrBusy):
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
			writeStatusError(w, apierrors.NewTooManyRequests("explain: "+err.Error(), retryAfterSeconds))
			return
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			writeStatus(w, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "explain: the request ended while waiting for its turn to ask the backends")
			return
		case err != nil:
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

// retryAfterSeconds is the Retry-After of a 429.
const retryAfterSeconds = 1

// requestVersion is the custom metrics API version of the explain
// request, "" if unknown.
func requestVersion(ctx context.Context) string {
	if info, ok := request.RequestInfoFrom(ctx); ok && info.APIGroup == Group {
		return info.APIVersion
	}
	return ""
}

// authorize asks a, for the request's user, about every read of acc.
// It writes the 403 or 500 and returns false when a read is not allowed;
// otherwise it returns the scope of the report: Wide when a allows every
// read of acc.Wide too.
func authorize(w http.ResponseWriter, r *http.Request, a Authorizer, acc Access) (Scope, bool) {
	ctx := r.Context()
	u, ok := request.UserFrom(ctx)
	if !ok {
		// The server's authentication filter always sets one.
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, "explain: no user in the request's context")
		return Scope{}, false
	}
	for _, attrs := range acc.Reads {
		attrs.User = u
		decision, reason, err := a.Authorize(ctx, attrs)
		switch {
		case decision == authorizer.DecisionAllow:
			// As kube-apiserver: an allow stands despite an error.
			continue
		case err != nil:
			klog.ErrorS(err, "Explain: authorization failed", "user", u.GetName(), "verb", attrs.Verb, "resource", attrs.Resource,
				"subresource", attrs.Subresource, "namespace", attrs.Namespace)
			writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError,
				fmt.Sprintf("explain: could not authorize user %q to %s: %v", u.GetName(), action(attrs), err))
			return Scope{}, false
		}
		klog.V(4).InfoS("Explain forbidden", "user", u.GetName(), "path", attrs.Path, "reason", reason)
		writeStatusError(w, responsewriters.ForbiddenStatusError(attrs, reason))
		return Scope{}, false
	}
	scope := Scope{Wide: true}
	for _, attrs := range acc.Wide {
		attrs.User = u
		decision, _, err := a.Authorize(ctx, attrs)
		if decision == authorizer.DecisionAllow {
			continue
		}
		if err != nil {
			klog.ErrorS(err, "Explain: authorization failed", "user", u.GetName(), "verb", attrs.Verb, "resource", attrs.Resource,
				"subresource", attrs.Subresource, "namespace", attrs.Namespace)
		}
		scope = Scope{Withheld: withheld(u, attrs)}
		break
	}
	return scope, true
}

// withheld is the note of a report without what is about every
// namespace.
func withheld(u user.Info, attrs authorizer.AttributesRecord) string {
	return "the series named like the metric that the backends hold and the discovery's dropped-series examples are left out: " +
		fmt.Sprintf("they are about every namespace, and User %q cannot %s", u.GetName(), action(attrs))
}

// action describes attrs as kube-apiserver's forbidden message does:
// `get resource "pods/m" in API group "custom.metrics.k8s.io" in the
// namespace "ns"`.
func action(attrs authorizer.AttributesRecord) string {
	resource := attrs.Resource
	if attrs.Subresource != "" {
		resource += "/" + attrs.Subresource
	}
	where := "at the cluster scope"
	if attrs.Namespace != "" {
		where = fmt.Sprintf("in the namespace %q", attrs.Namespace)
	}
	return fmt.Sprintf("%s resource %q in API group %q %s", attrs.Verb, resource, attrs.APIGroup, where)
}

// writeStatus writes a metav1.Status, which kubectl prints as
// "Error from server (Reason): message".
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	writeStatusError(w, &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg,
	}})
}

// writeStatusError writes err's Status.
func writeStatusError(w http.ResponseWriter, err *apierrors.StatusError) {
	st := err.ErrStatus
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
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
