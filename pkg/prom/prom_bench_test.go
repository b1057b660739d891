package prom

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// benchVectorBody is a /api/v1/query answer holding n samples labelled
// namespace and pod, as the custom provider's batched query returns them.
func benchVectorBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"status":"success","data":{"resultType":"vector","result":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"metric":{"namespace":"ns-%d","pod":"pod-%d"},"value":[1800000000.123,"%s"]}`,
			i/300, i%300, strconv.FormatFloat(10+float64(i%10)+0.25, 'f', -1, 64))
	}
	b.WriteString(`]}}`)
	return b.Bytes()
}

// BenchmarkQuery is one instant query over HTTP (loopback), answer decoded:
// the cost of each uncached query of the custom provider.
func BenchmarkQuery(b *testing.B) {
	for _, n := range []int{300, 3000} {
		b.Run(fmt.Sprintf("samples-%d", n), func(b *testing.B) {
			body := benchVectorBody(n)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(body)
			}))
			defer srv.Close()
			c, err := New(Options{URL: srv.URL, Timeout: 10 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				vec, err := c.Query(ctx, `sum(rate(http_requests_total{pod!=""}[1m])) by (namespace,pod)`, time.Now())
				if err != nil {
					b.Fatal(err)
				}
				if len(vec) != n {
					b.Fatalf("%d samples, want %d", len(vec), n)
				}
			}
		})
	}
}

var (
	seriesBodyOnce sync.Once
	seriesBody     []byte
)

// benchSeriesBody is a /api/v1/series answer of 100,000 series with nine
// labels each, built once.
func benchSeriesBody() []byte {
	seriesBodyOnce.Do(func() {
		var b bytes.Buffer
		b.WriteString(`{"status":"success","data":[`)
		for i := range 100_000 {
			if i > 0 {
				b.WriteByte(',')
			}
			pod := i / 4
			fmt.Fprintf(&b, `{"__name__":"app_metric_%d_total","code":"%d","container":"app","endpoint":"http-metrics","instance":"10.0.%d.%d:8080","job":"kubernetes-pods","namespace":"ns-%d","pod":"pod-%d","service":"svc-%d"}`,
				i%100, 200+i%4, pod>>8&255, pod&255, pod%100, pod, pod%50)
		}
		b.WriteString(`]}`)
		seriesBody = b.Bytes()
	})
	return seriesBody
}

// BenchmarkDecodeSeries decodes a 100,000-series /api/v1/series answer,
// the work of one relist of a broad rule per 100k series.
func BenchmarkDecodeSeries(b *testing.B) {
	body := benchSeriesBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := decodeSeries(bytes.NewReader(body), http.StatusOK, func(name string, lbls []Label) {
			if name != "" && len(lbls) == 8 {
				n++
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		if n != 100_000 {
			b.Fatalf("decoded %d series, want 100000", n)
		}
	}
}
