package config

import "fmt"

// Method is how discovery lists the shapes of a seriesQuery: the
// --discovery-method flag, and Backend.Discovery of a configured backend.
type Method string

// The discovery methods.
const (
	// MethodAuto uses the index when the backend answers it, and falls
	// back to the series for good (logged once) when it does not.
	MethodAuto Method = "auto"
	// MethodIndex asks Prometheus' index: /api/v1/labels and
	// /api/v1/label/__name__/values, a few requests per seriesQuery
	// whatever the number of series. A backend that does not answer them
	// is a discovery error.
	MethodIndex Method = "index"
	// MethodSeries streams every series of /api/v1/series, as
	// prometheus-adapter does: O(series) per relist.
	MethodSeries Method = "series"
)

// ParseMethod returns the Method called s ("" is MethodSeries, the
// default: prometheus-adapter's semantics of --metrics-max-age).
func ParseMethod(s string) (Method, error) {
	switch m := Method(s); m {
	case "":
		return MethodSeries, nil
	case MethodAuto, MethodIndex, MethodSeries:
		return m, nil
	}
	return "", fmt.Errorf("discovery method %q: want auto, index or series", s)
}
