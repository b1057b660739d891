package provider

// Plan is what a request sends to its backend, as explain shows it.
type Plan struct {
	// Backend names the backend the query is sent to.
	Backend string `json:"backend,omitempty"`
	// Rule is the path of the rule serving the metric, e.g. "rules[2]";
	// Series is the series name its query is rendered for.
	Rule   string `json:"rule"`
	Series string `json:"series"`
	// Query is the rule's query as the request renders it; Guard says
	// what the partial-window guard adds to it (Runner.Guard), and Sent,
	// when the guard changed it, is the text sent.
	Query string `json:"query"`
	Guard string `json:"guard"`
	Sent  string `json:"sent,omitempty"`
	// Shared tells whether the query is the one shared by every request
	// for the metric, filtered in promgate; SharedReason says why not.
	Shared       bool   `json:"shared"`
	SharedReason string `json:"sharedReason,omitempty"`
	// Objects is, for custom metrics, how many objects the request is
	// about.
	Objects *int `json:"objects,omitempty"`
	// Ran is set when the request was run; Samples is then how many values
	// it gave.
	Ran     bool `json:"ran"`
	Samples int  `json:"samples"`
}
