package fakeprom

import "strconv"

// DiscoFamilies is the number of metric names of a discovery universe.
const DiscoFamilies = 100

// Universe is the discovery benchmark's series set: n series spread evenly
// over DiscoFamilies counters named bench_disco_<f>_total, each series with
// eight labels (code, container, endpoint, instance, job, namespace, pod,
// service), so that the default config's broad generic rule
// ({__name__=~"^.+_total$",namespace!="",pod!=""}) matches every one of them.
// Series are generated as they are streamed; none is kept in memory.
type Universe struct {
	n        int
	families []family
}

// NewUniverse returns a universe of n series.
func NewUniverse(n int) *Universe {
	u := &Universe{n: n}
	for f := range DiscoFamilies {
		count := n / DiscoFamilies
		if f < n%DiscoFamilies {
			count++
		}
		u.families = append(u.families, &discoFamily{metric: "bench_disco_" + strconv.Itoa(f) + "_total", count: count, f: f})
	}
	return u
}

// Series returns the number of series.
func (u *Universe) Series() int { return u.n }

func (u *Universe) familyList() []family { return u.families }

var discoCodes = [4]string{"200", "404", "500", "503"}

type discoFamily struct {
	metric string
	count  int
	f      int
}

func (d *discoFamily) name() string  { return d.metric }
func (d *discoFamily) counter() bool { return true }
func (d *discoFamily) each(nsOK func(string) bool, fn func([]Label, float64) bool) bool {
	lbls := []Label{
		{Name: "code"}, {Name: "container", Value: "app"}, {Name: "endpoint", Value: "http-metrics"},
		{Name: "instance"}, {Name: "job", Value: "kubernetes-pods"}, {Name: "namespace"}, {Name: "pod"}, {Name: "service"},
	}
	var buf []byte
	pod := -1
	for j := range d.count {
		if p := j / len(discoCodes); p != pod {
			pod = p
			lbls[5].Value = "ns-" + strconv.Itoa(pod%100)
			lbls[6].Value = "pod-" + strconv.Itoa(pod)
			lbls[7].Value = "svc-" + strconv.Itoa(pod%50)
			buf = append(buf[:0], "10."...)
			buf = strconv.AppendInt(buf, int64(pod>>16&255), 10)
			buf = append(buf, '.')
			buf = strconv.AppendInt(buf, int64(pod>>8&255), 10)
			buf = append(buf, '.')
			buf = strconv.AppendInt(buf, int64(pod&255), 10)
			buf = append(buf, ":8080"...)
			lbls[3].Value = string(buf)
		}
		if !nsOK(lbls[5].Value) {
			continue
		}
		lbls[0].Value = discoCodes[j%len(discoCodes)]
		if !fn(lbls, float64(d.f+j%7)) {
			return false
		}
	}
	return true
}
