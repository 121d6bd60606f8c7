package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
	"github.com/analytics-webhooks/webhook/storage/pgstore"
)

// runExtras measures what the throughput table does not: enqueue rates,
// trigger-to-attempt latency, fan-out cost, signing and memory.
func runExtras(ctx context.Context, e *env, out io.Writer) error {
	steps := []struct {
		name string
		f    func(context.Context, *env, io.Writer) error
	}{
		{"enqueue rates", enqueueRates},
		{"latency", latency},
		{"fan-out", fanOut},
		{"signing", signing},
		{"memory", memory},
	}
	for _, s := range steps {
		if err := s.f(ctx, e, out); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// hooksFor creates webhooks subscribed to event, posting to the receiver.
func hooksFor(ctx context.Context, svc *webhook.Service, url, event string, n int, filter func(i int) []webhook.Filter) ([]hookSpec, error) {
	out := make([]hookSpec, 0, n)
	for i := range n {
		var fs []webhook.Filter
		if filter != nil {
			fs = filter(i)
		}
		h, err := svc.Create(ctx, &webhook.Webhook{Name: event + "-" + strconv.Itoa(i), URL: url,
			Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{event}, Filters: fs}}})
		if err != nil {
			return nil, err
		}
		out = append(out, hookSpec{ID: h.ID, URL: h.URL, Secret: h.Secret})
	}
	return out, nil
}

// pgService migrates a fresh pgstore schema and returns a Service on it.
func (e *env) pgService(ctx context.Context, schema string) (*webhook.Service, error) {
	store, err := pgstore.New(e.pool, &pgstore.Config{Schema: schema})
	if err != nil {
		return nil, err
	}
	if err := store.Migrate(ctx); err != nil {
		return nil, err
	}
	return webhook.NewService(store, &webhook.Config{Network: webhook.NetworkPolicy{AllowPrivate: true}})
}

func timeCalls(n int, f func(i int) error) (time.Duration, error) {
	start := time.Now()
	for i := range n {
		if err := f(i); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// enqueueRates compares one caller's enqueue calls, sequentially, with
// no worker running: TriggerEvent matching 1 and 50 webhooks on pgstore,
// River's Insert and InsertMany of 50 jobs.
func enqueueRates(ctx context.Context, e *env, out io.Writer) error {
	calls1, calls50 := 2000, 200
	if e.o.Quick {
		calls1, calls50 = 100, 10
	}
	pgSchema, rvSchema := e.schema("enq", 0), e.schema("renq", 0)
	defer e.dropSchema(pgSchema)
	defer e.dropSchema(rvSchema)
	svc, err := e.pgService(ctx, pgSchema)
	if err != nil {
		return err
	}
	url := e.rc.base + "/hook"
	if _, err := hooksFor(ctx, svc, url, "bench.one", 1, nil); err != nil {
		return err
	}
	if _, err := hooksFor(ctx, svc, url, "bench.fifty", 50, nil); err != nil {
		return err
	}
	trigger := func(event string) func(int) error {
		return func(i int) error {
			_, err := svc.TriggerEvent(ctx, event, eventData(i, e.o.Pad), "production")
			return err
		}
	}
	if err := trigger("bench.one")(0); err != nil { // loads the index
		return err
	}
	t1, err := timeCalls(calls1, trigger("bench.one"))
	if err != nil {
		return err
	}
	t50, err := timeCalls(calls50, trigger("bench.fifty"))
	if err != nil {
		return err
	}

	if err := migrateRiver(ctx, e.pool, rvSchema); err != nil {
		return err
	}
	client, err := river.NewClient(riverpgxv5.New(e.pool), riverConfig(rvSchema, nil, 0))
	if err != nil {
		return err
	}
	h := hookSpec{ID: "wh_0", URL: url}
	job := func(i int) riverArgs {
		id := "msg_enq_" + strconv.Itoa(i)
		return riverArgs{Hook: h, MsgID: id, DeliveryID: "dlv_" + id, Body: string(envelope(id, h.ID, i, e.o.Pad))}
	}
	r1, err := timeCalls(calls1, func(i int) error {
		_, err := client.Insert(ctx, job(i), nil)
		return err
	})
	if err != nil {
		return err
	}
	r50, err := timeCalls(calls50, func(i int) error {
		ps := make([]river.InsertManyParams, 50)
		for j := range ps {
			ps[j] = river.InsertManyParams{Args: job(i*50 + j)}
		}
		_, err := client.InsertMany(ctx, ps)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "## Enqueue, one caller, sequential calls, no worker running")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| call | calls | calls/s | deliveries/s | µs/call |")
	fmt.Fprintln(out, "|---|---|---|---|---|")
	row := func(name string, calls, per int, d time.Duration) {
		fmt.Fprintf(out, "| %s | %d | %.0f | %.0f | %.0f |\n", name, calls, float64(calls)/d.Seconds(), float64(calls*per)/d.Seconds(), float64(d.Microseconds())/float64(calls))
	}
	row("pgstore TriggerEvent, 1 matching webhook", calls1, 1, t1)
	row("pgstore TriggerEvent, 50 matching webhooks", calls50, 50, t50)
	row("River Insert (1 job)", calls1, 1, r1)
	row("River InsertMany (50 jobs)", calls50, 50, r50)
	fmt.Fprintln(out)
	return nil
}

func percentile(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// latency measures trigger → first attempt with an idle worker in
// another process: the time from the start of the enqueue call to the
// receiver's reading of the request, over the one machine's clock.
func latency(ctx context.Context, e *env, out io.Writer) error {
	samples := 200
	if e.o.Quick {
		samples = 20
	}
	const warm = 5
	fmt.Fprintln(out, "## Trigger → first attempt, idle worker in another process")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| contender | samples | p50 | p99 | max |")
	fmt.Fprintln(out, "|---|---|---|---|---|")

	// pgstore
	schema := e.schema("lat", 0)
	defer e.dropSchema(schema)
	svc, err := e.pgService(ctx, schema)
	if err != nil {
		return err
	}
	hs, err := hooksFor(ctx, svc, e.rc.base+"/hook", "bench.one", 1, nil)
	if err != nil {
		return err
	}
	spec := workerSpec{Kind: "pg", DB: e.o.DB, Schema: schema, App: fmt.Sprintf("wbench-%d-lat", os.Getpid()), MaxConns: e.o.MaxConns, Concurrency: e.o.Concurrency}
	pgLat, err := e.measureLatency(ctx, spec, secretsOf(hs), samples+warm, func(i int) (string, error) {
		ids, err := svc.TriggerEvent(ctx, "bench.one", eventData(i, e.o.Pad), "production")
		if err != nil || len(ids) != 1 {
			return "", fmt.Errorf("trigger: %v ids, %w", ids, err)
		}
		return ids[0], nil
	})
	if err != nil {
		return fmt.Errorf("pgstore: %w", err)
	}
	pgLat = pgLat[warm:]
	fmt.Fprintf(out, "| pgstore worker (LISTEN/NOTIFY wake-up) | %d | %s | %s | %s |\n", len(pgLat), ms(percentile(pgLat, .5)), ms(percentile(pgLat, .99)), ms(percentile(pgLat, 1)))

	// River
	rschema := e.schema("rlat", 0)
	defer e.dropSchema(rschema)
	if err := migrateRiver(ctx, e.pool, rschema); err != nil {
		return err
	}
	client, err := river.NewClient(riverpgxv5.New(e.pool), riverConfig(rschema, nil, 0))
	if err != nil {
		return err
	}
	rh, err := e.syntheticHooks()
	if err != nil {
		return err
	}
	spec = workerSpec{Kind: "river", DB: e.o.DB, Schema: rschema, App: fmt.Sprintf("wbench-%d-rlat", os.Getpid()), MaxConns: e.o.MaxConns, Concurrency: e.o.Concurrency}
	rvLat, err := e.measureLatency(ctx, spec, secretsOf(rh), samples+warm, func(i int) (string, error) {
		id := "msg_lat_" + strconv.Itoa(i)
		args := riverArgs{Hook: rh[0], MsgID: id, DeliveryID: "dlv_" + id, Body: string(envelope(id, rh[0].ID, i, e.o.Pad))}
		_, err := client.Insert(ctx, args, nil)
		return args.DeliveryID, err
	})
	if err != nil {
		return fmt.Errorf("river: %w", err)
	}
	rvLat = rvLat[warm:]
	fmt.Fprintf(out, "| River worker (tuned polling, insert notifications) | %d | %s | %s | %s |\n\n", len(rvLat), ms(percentile(rvLat, .5)), ms(percentile(rvLat, .99)), ms(percentile(rvLat, 1)))
	return nil
}

// measureLatency starts an idle worker subprocess, then n times enqueues
// one delivery and waits for the receiver to get it, pausing 0–20 ms
// (at random) between deliveries so wake-ups do not line up with polls.
func (e *env) measureLatency(ctx context.Context, spec workerSpec, secrets map[string]string, n int, enqueue func(i int) (string, error)) ([]time.Duration, error) {
	spec.Receiver = e.rc.base
	k, err := startChild(ctx, "worker", spec)
	if err != nil {
		return nil, err
	}
	defer func() {
		if k.cmd.ProcessState == nil {
			k.kill()
		}
	}()
	if err := e.rc.reset(ctx, secrets, 1); err != nil {
		return nil, err
	}
	if err := k.send("go"); err != nil {
		return nil, err
	}
	var lat []time.Duration
	for i := range n {
		time.Sleep(time.Duration(rand.IntN(20_000)) * time.Microsecond)
		start := time.Now()
		id, err := enqueue(i)
		if err != nil {
			return nil, err
		}
		_, at, err := e.rc.waitFor(ctx, 0, id, 10*time.Second)
		if err != nil {
			return nil, err
		}
		lat = append(lat, at.Sub(start))
	}
	var res workerResult
	if err := k.finish(ctx, &res); err != nil {
		return nil, err
	}
	st, _, err := e.rc.waitFor(ctx, 0, "", 0)
	if err != nil {
		return nil, err
	}
	if st.Requests != n || st.Distinct != n || st.Verified != n {
		return nil, fmt.Errorf("check failed: receiver got %d requests, %d distinct, %d verified, want %d (%s)", st.Requests, st.Distinct, st.Verified, n, st.FirstBad)
	}
	return lat, nil
}

// fanOut measures one TriggerEvent call matching 10 of n webhooks that
// all subscribe to the event and filter on equality of one property, on
// memstore (so the figure is the matching, not a database). Both sizes
// are set up first and then called in turn, one call each, so that the
// two see the same load on the machine (calls tens of microseconds long
// are easily moved by it).
func fanOut(ctx context.Context, e *env, out io.Writer) error {
	sizes := []int{1000, 100_000}
	window, maxCalls := 12*time.Second, 5000
	if e.o.Quick {
		sizes, window, maxCalls = []int{1000, 10_000}, time.Second, 500
	}
	fmt.Fprintln(out, "## Fan-out: one TriggerEvent call, 10 matches among n subscribers (memstore)")
	fmt.Fprintln(out)
	fmt.Fprintf(out, "Each size's first call loads its index; then the sizes are called in turn for %s (at least 3, at most %d calls each); the default 5 s index TTL applies.\n\n", window, maxCalls)
	fmt.Fprintln(out, "| subscribers | create all | first call | calls | p50 | p99 | max | mean |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|")
	type size struct {
		n       int
		svc     *webhook.Service
		store   *memstore.Store
		created time.Duration
		first   time.Duration
		ds      []time.Duration
		sum     time.Duration
	}
	call := func(s *size) (time.Duration, error) {
		data := map[string]any{"customer": "c_" + strconv.Itoa(rand.IntN(s.n/10)), "seq": 1}
		t := time.Now()
		ids, err := s.svc.TriggerEvent(ctx, "fan", data, "production")
		d := time.Since(t)
		if err == nil && len(ids) != 10 {
			err = fmt.Errorf("%d matches, want 10", len(ids))
		}
		return d, err
	}
	var all []*size
	for _, n := range sizes {
		s := &size{n: n, store: memstore.New(&memstore.Config{MaxActive: -1})}
		var err error
		if s.svc, err = webhook.NewService(s.store, &webhook.Config{Network: webhook.NetworkPolicy{AllowPrivate: true}}); err != nil {
			return err
		}
		start := time.Now()
		if _, err := hooksFor(ctx, s.svc, e.rc.base+"/hook", "fan", n, func(i int) []webhook.Filter {
			return []webhook.Filter{{Property: "customer", Operator: webhook.FilterEquals, Value: "c_" + strconv.Itoa(i/10)}}
		}); err != nil {
			return err
		}
		s.created = time.Since(start)
		if s.first, err = call(s); err != nil {
			return err
		}
		all = append(all, s)
	}
	// At least minCalls, however slow: one slow call is no median.
	const minCalls = 3
	for t0 := time.Now(); len(all[0].ds) < minCalls || (time.Since(t0) < window && len(all[0].ds) < maxCalls); {
		for _, s := range all {
			d, err := call(s)
			if err != nil {
				return err
			}
			s.ds = append(s.ds, d)
			s.sum += d
		}
	}
	var p50s []time.Duration
	for _, s := range all {
		p50s = append(p50s, percentile(s.ds, .5))
		fmt.Fprintf(out, "| %d | %s | %s | %d | %s | %s | %s | %s |\n", s.n, s.created.Round(time.Millisecond), ms(s.first), len(s.ds),
			ms(percentile(s.ds, .5)), ms(percentile(s.ds, .99)), ms(percentile(s.ds, 1)), ms(s.sum/time.Duration(len(s.ds))))
		runtime.KeepAlive(s.store)
	}
	fmt.Fprintf(out, "\np50 at %d ÷ p50 at %d: %.2f\n\n", sizes[1], sizes[0], float64(p50s[1])/float64(p50s[0]))
	return nil
}

// signing compares webhook.Sign with a bare HMAC-SHA256 of the same
// message, on a 1 KiB body.
func signing(_ context.Context, e *env, out io.Writer) error {
	secret, err := webhook.NewSecret()
	if err != nil {
		return err
	}
	key, err := webhook.ParseSecret(secret)
	if err != nil {
		return err
	}
	body := envelope("msg_sign", "wh_0", 1, e.o.Pad)
	ts := time.Now()
	sign := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := webhook.Sign(secret, "msg_sign", ts, body); err != nil {
				b.Fatal(err)
			}
		}
	})
	raw := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			mac := hmac.New(sha256.New, key)
			mac.Write([]byte("msg_sign." + strconv.FormatInt(ts.Unix(), 10) + "."))
			mac.Write(body)
			_ = "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
		}
	})
	fmt.Fprintf(out, "## Signing a %d-byte body\n\n", len(body))
	fmt.Fprintln(out, "| | ns/op | allocs/op | B/op |")
	fmt.Fprintln(out, "|---|---|---|---|")
	fmt.Fprintf(out, "| webhook.Sign (parses the secret each call) | %d | %d | %d |\n", sign.NsPerOp(), sign.AllocsPerOp(), sign.AllocedBytesPerOp())
	fmt.Fprintf(out, "| crypto/hmac + base64, key parsed once | %d | %d | %d |\n\n", raw.NsPerOp(), raw.AllocsPerOp(), raw.AllocedBytesPerOp())
	return nil
}

// memory measures memstore's heap per queued delivery: n deliveries
// enqueued with no worker, the live heap compared before and after.
func memory(ctx context.Context, e *env, out io.Writer) error {
	n := 100_000
	if e.o.Quick {
		n = 10_000
	}
	fmt.Fprintf(out, "## memstore memory per queued delivery (%d queued, small events)\n\n", n)
	fmt.Fprintln(out, "| matching webhooks per event | heap per delivery | body per delivery | beyond the body |")
	fmt.Fprintln(out, "|---|---|---|---|")
	for _, per := range []int{1, 50} {
		store := memstore.New(&memstore.Config{MaxActive: -1})
		svc, err := webhook.NewService(store, &webhook.Config{Network: webhook.NetworkPolicy{AllowPrivate: true}})
		if err != nil {
			return err
		}
		if _, err := hooksFor(ctx, svc, e.rc.base+"/hook", "mem", per, nil); err != nil {
			return err
		}
		data := func(i int) map[string]any { return map[string]any{"seq": i, "customer": "c_1"} }
		ids, err := svc.TriggerEvent(ctx, "mem", data(0), "production")
		if err != nil {
			return err
		}
		d, err := svc.Delivery(ctx, ids[0])
		if err != nil {
			return err
		}
		pl, err := store.GetPayload(ctx, d.PayloadID)
		if err != nil {
			return err
		}
		bodyLen := len(pl.Body)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range n / per {
			if _, err := svc.TriggerEvent(ctx, "mem", data(i+1), "production"); err != nil {
				return err
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perDelivery := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n/per*per)
		fmt.Fprintf(out, "| %d | %.0f B | %d B | %.0f B |\n", per, perDelivery, bodyLen, perDelivery-float64(bodyLen))
		runtime.KeepAlive(store)
		runtime.KeepAlive(svc)
	}
	fmt.Fprintln(out)
	return nil
}
