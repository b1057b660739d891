package prom

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAnswersInFlightBounded: each answer is within its own limit, but the
// answers read at once are bounded together: with the memory for answers
// in flight taken (by other queries), an answer fails at once as too
// large, naming that limit; once it is given back, the same answer is
// served.
func TestAnswersInFlightBounded(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(`{"status":"success","data":{"resultType":"vector","result":[`)
	for i := range 20000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"metric":{"pod":"p%d"},"value":[1700000000,"1"]}`, i)
	}
	sb.WriteString(`]}}`)
	answer := sb.String() // about 1 MiB
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !chunked {
					w.Header().Set("Content-Length", fmt.Sprint(len(answer)))
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(answer))
			}))
			defer srv.Close()
			c, err := New(Options{Name: "inflight", URL: srv.URL, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			lc := c.WithLimits(Limits{})

			held := int64(MaxAnswerBytesInFlight - 1<<20) // what other answers hold: 1 MiB is left
			if !answerMemory.TryAcquire(held) {
				t.Fatal("answers in flight already hold memory")
			}
			_, err = lc.Query(context.Background(), "up", time.Time{})
			answerMemory.Release(held)
			var le *LimitError
			if !errors.As(err, &le) || !le.InFlight || KindOf(err) != TooLarge {
				t.Fatalf("with the memory for answers taken: %v; want too large, for answers in flight", err)
			}
			if s := Summary(err); !strings.Contains(s, "inflight") || !strings.Contains(s, "limit 256 MiB for answers in flight") {
				t.Errorf("Summary = %q, want the backend and the limit", s)
			}
			vec, err := lc.Query(context.Background(), "up", time.Time{})
			if err != nil || len(vec) != 20000 {
				t.Fatalf("with the memory given back: %d samples, %v", len(vec), err)
			}
			// Every answer gave back what it took.
			if !answerMemory.TryAcquire(MaxAnswerBytesInFlight) {
				t.Fatal("memory for answers in flight is still held after the answers were decoded")
			}
			answerMemory.Release(MaxAnswerBytesInFlight)
		})
	}
}
