// A small pusher built on the real Go client (client_golang's push package), used by
// ci/clients/test_go.py. Built offline in GOPATH mode against Debian's
// golang-github-prometheus-client-golang-dev (see ci/suites/40-clients.sh).
//
// Usage:
//
//	pusher push|add   -url U -job J [-group k=v]... [-set full|small|conflict|aggregate] [-temp F] [-format proto|text] [-idempotency-key K]
//	pusher delete     -url U -job J [-group k=v]...
//	pusher scrape     -url U [-accept A]
//
// push is Pusher.Push (PUT), add is Pusher.Add (POST), delete is Pusher.Delete (DELETE). The
// metric sets are fixed so that the tests know every value:
//
//	full:  counter gopush_requests_total = 7, counter jobs_done = 42 (no _total suffix),
//	       gauge gopush_temperature{room="lab"} = -temp, classic histogram gopush_latency_seconds
//	       (buckets 0.1, 0.5, 1; observations 0.05 0.3 0.3 2), summary gopush_payload_bytes
//	       (objectives 0.5 and 0.9; observations 10 20 30), native histogram
//	       gopush_native_seconds (bucket factor 1.1, no classic buckets; observations 0 0.5 1 1 3).
//	small: gauge gopush_temperature{room="lab"} = -temp and gauge gopush_extra = 1.
//	conflict: counter gopush_temperature{room="lab"} = 1 (a type conflict with full and small).
//	aggregate: one invocation's worth, for /aggregate: counter agg_invocations_total = 1,
//	       classic histogram agg_duration_seconds (buckets 0.1, 1; one observation of temp),
//	       native histogram agg_native_seconds (factor 1.1; one observation of temp), summary
//	       agg_payload_bytes without objectives (one observation of 10), gauge agg_last_temp = temp.
//
// -idempotency-key sends that Idempotency-Key header with the push, through the client's own
// HTTPDoer hook (push.Pusher.Client), as an application would.
//
// scrape GETs the URL with the Accept header of the Go client and Prometheus
// (delimited protobuf preferred), decodes the answer with expfmt according to its
// Content-Type and prints one JSON line {"content_type": ...} followed by one JSON line per
// MetricFamily (jsonpb, the protobuf JSON mapping).
//
// Any error is printed to stderr and the exit status is 1.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/golang/protobuf/jsonpb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

type groupFlags []string

func (g *groupFlags) String() string     { return strings.Join(*g, ",") }
func (g *groupFlags) Set(v string) error { *g = append(*g, v); return nil }

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "pusher: "+format+"\n", args...)
	os.Exit(1)
}

func fullSet(temp float64) []prometheus.Collector {
	requests := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gopush_requests_total", Help: "Requests handled by the Go pusher.",
	})
	requests.Add(7)
	jobsDone := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "jobs_done", Help: "A counter whose name has no _total suffix.",
	})
	jobsDone.Add(42)
	temperature := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gopush_temperature", Help: "A gauge with a label.",
	}, []string{"room"})
	temperature.WithLabelValues("lab").Set(temp)
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "gopush_latency_seconds", Help: "A classic histogram.",
		Buckets: []float64{0.1, 0.5, 1},
	})
	for _, v := range []float64{0.05, 0.3, 0.3, 2} {
		latency.Observe(v)
	}
	payload := prometheus.NewSummary(prometheus.SummaryOpts{
		Name: "gopush_payload_bytes", Help: "A summary.",
		Objectives: map[float64]float64{0.5: 0.05, 0.9: 0.01},
	})
	for _, v := range []float64{10, 20, 30} {
		payload.Observe(v)
	}
	// Native (sparse) histograms exist in client_golang since 1.14, the Debian version.
	// No classic buckets: the histogram is native only.
	native := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "gopush_native_seconds", Help: "A native histogram.",
		NativeHistogramBucketFactor: 1.1,
	})
	for _, v := range []float64{0, 0.5, 1, 1, 3} {
		native.Observe(v)
	}
	return []prometheus.Collector{requests, jobsDone, temperature, latency, payload, native}
}

func smallSet(temp float64) []prometheus.Collector {
	temperature := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gopush_temperature", Help: "A gauge with a label.",
	}, []string{"room"})
	temperature.WithLabelValues("lab").Set(temp)
	extra := prometheus.NewGauge(prometheus.GaugeOpts{Name: "gopush_extra", Help: "Added by the small set."})
	extra.Set(1)
	return []prometheus.Collector{temperature, extra}
}

func conflictSet() []prometheus.Collector {
	temperature := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gopush_temperature", Help: "A gauge with a label.",
	}, []string{"room"})
	temperature.WithLabelValues("lab").Add(1)
	return []prometheus.Collector{temperature}
}

func aggregateSet(temp float64) []prometheus.Collector {
	invocations := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "agg_invocations_total", Help: "Invocations.",
	})
	invocations.Inc()
	duration := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "agg_duration_seconds", Help: "Duration.", Buckets: []float64{0.1, 1},
	})
	duration.Observe(temp)
	native := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "agg_native_seconds", Help: "Duration, native.", NativeHistogramBucketFactor: 1.1,
	})
	native.Observe(temp)
	payload := prometheus.NewSummary(prometheus.SummaryOpts{
		Name: "agg_payload_bytes", Help: "Payload.", Objectives: map[float64]float64{},
	})
	payload.Observe(10)
	last := prometheus.NewGauge(prometheus.GaugeOpts{Name: "agg_last_temp", Help: "Last."})
	last.Set(temp)
	return []prometheus.Collector{invocations, duration, native, payload, last}
}

// headerDoer adds one header to every request (the Idempotency-Key).
type headerDoer struct {
	name, value string
}

func (d headerDoer) Do(req *http.Request) (*http.Response, error) {
	req.Header.Set(d.name, d.value)
	return http.DefaultClient.Do(req)
}

func scrape(url, accept string) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		fail("%v", err)
	}
	req.Header.Set("Accept", accept)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		fail("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		fail("GET %s: status %d: %s", url, resp.StatusCode, body)
	}
	fmt.Printf("{\"content_type\": %q, \"format\": %q}\n", resp.Header.Get("Content-Type"), expfmt.ResponseFormat(resp.Header))
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	m := jsonpb.Marshaler{}
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err == io.EOF {
			break
		} else if err != nil {
			fail("decoding the scrape: %v", err)
		}
		s, err := m.MarshalToString(&mf)
		if err != nil {
			fail("jsonpb: %v", err)
		}
		fmt.Println(s)
	}
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: pusher push|add|delete|scrape [flags]")
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	url := fs.String("url", "", "gateway base URL (push) or scrape URL (scrape)")
	job := fs.String("job", "go_job", "job name")
	set := fs.String("set", "full", "metric set: full, small or conflict")
	temp := fs.Float64("temp", 21.5, "value of gopush_temperature")
	format := fs.String("format", "proto", "push body format: proto (the client's default) or text")
	idempotencyKey := fs.String("idempotency-key", "", "Idempotency-Key header of the push")
	accept := fs.String("accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3", "Accept header of scrape")
	var groups groupFlags
	fs.Var(&groups, "group", "grouping label k=v (repeatable)")
	if err := fs.Parse(os.Args[2:]); err != nil {
		fail("%v", err)
	}
	if *url == "" {
		fail("-url is required")
	}
	if cmd == "scrape" {
		scrape(*url, *accept)
		return
	}

	p := push.New(*url, *job)
	for _, g := range groups {
		kv := strings.SplitN(g, "=", 2)
		if len(kv) != 2 {
			fail("bad -group %q", g)
		}
		p = p.Grouping(kv[0], kv[1])
	}
	if *idempotencyKey != "" {
		p = p.Client(headerDoer{"Idempotency-Key", *idempotencyKey})
	}
	switch *format {
	case "proto":
		// The default of push.New: expfmt.FmtProtoDelim.
	case "text":
		p = p.Format(expfmt.FmtText)
	default:
		fail("bad -format %q", *format)
	}
	var err error
	switch cmd {
	case "push", "add":
		var collectors []prometheus.Collector
		switch *set {
		case "full":
			collectors = fullSet(*temp)
		case "small":
			collectors = smallSet(*temp)
		case "conflict":
			collectors = conflictSet()
		case "aggregate":
			collectors = aggregateSet(*temp)
		default:
			fail("bad -set %q", *set)
		}
		for _, c := range collectors {
			p = p.Collector(c)
		}
		if cmd == "push" {
			err = p.Push()
		} else {
			err = p.Add()
		}
	case "delete":
		err = p.Delete()
	default:
		fail("unknown command %q", cmd)
	}
	if err != nil {
		fail("%s: %v", cmd, err)
	}
}
