package resource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/promql"
	"github.com/promgate/promgate/pkg/provider"
)

// job is one query to run; namespace is set when the query selected one
// namespace and its samples belong to it.
type job struct {
	query     provider.Query
	namespace string
}

// queryOf is q of the rule's field, as the provider sends it.
func queryOf(r *rule, field string, q promql.Query) provider.Query {
	return provider.Query{API: provider.ResourceAPI, Metric: strings.TrimPrefix(r.Path, "resourceRules."), Field: field, Query: q}
}

// result is a job's answer.
type result struct {
	namespace string
	vec       model.Vector
}

// queryAll builds the jobs of every configured resource (CPU, memory,
// swap) with build and runs them all
// concurrently. The first failure cancels the others; errors are API
// statuses naming the field whose query failed (and, for backend failures,
// the backend).
func (p *Provider) queryAll(ctx context.Context, ts time.Time, build func(*rule) ([]job, error)) ([resources][]result, error) {
	var out [resources][]result
	var mu sync.Mutex
	var first error // the failure that canceled the others
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for i, r := range p.rules() {
		if r == nil {
			continue
		}
		jobs, err := build(r)
		if err != nil {
			field := r.Path
			if len(jobs) > 0 {
				field = jobs[0].query.Field
			}
			return out, apierrors.NewInternalError(config.Fieldf(field, "%v", err))
		}
		out[i] = make([]result, len(jobs))
		for j, jb := range jobs {
			out[i][j].namespace = jb.namespace
			wg.Add(1)
			go func() {
				defer wg.Done()
				q := jb.query
				q.Backend = p.backend
				ans, err := p.runner.Run(ctx, q, ts)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = withField(jb.query.Field, err)
					}
					mu.Unlock()
					cancel()
					return
				}
				out[i][j].vec = ans.Vector
			}()
		}
	}
	wg.Wait()
	return out, first
}

// withField converts err into an API status and puts the failing field in
// its message.
func withField(field string, err error) error {
	se := provider.StatusError(err)
	var status *apierrors.StatusError
	if errors.As(se, &status) {
		status.ErrStatus.Message = field + ": " + status.ErrStatus.Message
		return status
	}
	return fmt.Errorf("%s: %w", field, se)
}
