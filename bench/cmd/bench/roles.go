package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
	"github.com/analytics-webhooks/webhook/storage/pgstore"
)

// workerSpec tells a worker subprocess what to run.
type workerSpec struct {
	Kind        string     `json:"kind"` // raw, mem, pg or river
	DB          string     `json:"db,omitempty"`
	Schema      string     `json:"schema,omitempty"`
	App         string     `json:"app,omitempty"` // application_name of its connections
	MaxConns    int32      `json:"max_conns,omitempty"`
	Receiver    string     `json:"receiver"`        // the receiver's base URL
	Hooks       []hookSpec `json:"hooks,omitempty"` // raw: where to send
	Webhooks    int        `json:"webhooks,omitempty"`
	N           int        `json:"n,omitempty"`       // raw and mem: deliveries to make
	Backlog     int        `json:"backlog,omitempty"` // mem: 0 enqueues all, then drains; else the most queued at once
	Pad         int        `json:"pad,omitempty"`
	Concurrency int        `json:"concurrency"`
}

// hookSpec is one endpoint of the raw and River contenders, which have
// no webhook store of their own.
type hookSpec struct {
	ID     string `json:"id"`
	URL    string `json:"url"`
	Secret string `json:"secret"`
}

// workerResult is a worker subprocess's final line.
type workerResult struct {
	Recorded int    `json:"recorded"`
	Err      string `json:"err,omitempty"`
}

// runWorkerRole is a worker subprocess: it prepares, prints "ready …",
// starts on the line "go" and stops when its stdin closes, printing a
// workerResult.
func runWorkerRole() error {
	var spec workerSpec
	if err := json.Unmarshal([]byte(os.Getenv(specEnv)), &spec); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := bufio.NewScanner(os.Stdin)
	waitGo := func() error {
		if !in.Scan() || in.Text() != "go" {
			return errors.New("stdin closed before go")
		}
		return nil
	}
	waitStop := func() { io.Copy(io.Discard, os.Stdin) }
	if dir := os.Getenv(profileEnv); dir != "" {
		waitGo, waitStop = profiled(dir, spec, waitGo, waitStop)
	}
	var res workerResult
	var err error
	switch spec.Kind {
	case "raw":
		err = runRaw(ctx, spec, waitGo, waitStop, &res)
	case "mem":
		err = runMem(ctx, spec, waitGo, waitStop, &res)
	case "pg":
		err = runPG(ctx, spec, waitGo, waitStop)
	case "river":
		err = runRiver(ctx, spec, waitGo, waitStop)
	default:
		err = fmt.Errorf("unknown worker kind %q", spec.Kind)
	}
	if err != nil {
		res.Err = err.Error()
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// profileEnv names the environment variable that, set to a directory,
// makes each worker subprocess write a CPU profile of its run there
// (from "go" to the end), named after its kind and process ID.
const profileEnv = "WEBHOOK_BENCH_CPUPROFILE"

// profiled wraps waitGo and waitStop to profile the run between them.
func profiled(dir string, spec workerSpec, waitGo func() error, waitStop func()) (func() error, func()) {
	var f *os.File
	return func() error {
			if err := waitGo(); err != nil {
				return err
			}
			var err error
			if f, err = os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", spec.Kind, os.Getpid()))); err != nil {
				return err
			}
			return pprof.StartCPUProfile(f)
		}, func() {
			waitStop()
			if f != nil {
				pprof.StopCPUProfile()
				f.Close()
			}
		}
}

// benchClient is the HTTP client of the raw and River contenders: what
// net/http gives once tuned for one busy host.
func benchClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 512
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// postSigned sends one Standard Webhooks request, as a hand-written
// sender would.
func postSigned(ctx context.Context, hc *http.Client, h hookSpec, msgID, deliveryID string, body []byte) error {
	sig, err := webhook.Sign(h.Secret, msgID, time.Now(), body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytesReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderMessageID, msgID)
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(time.Now().Unix(), 10))
	req.Header.Set(webhook.HeaderSignature, sig)
	req.Header.Set(webhook.HeaderXWebhookID, h.ID)
	req.Header.Set(webhook.HeaderXDeliveryID, deliveryID)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", h.URL, resp.Status)
	}
	return nil
}

// runRaw is the raw net/http loop: spec.N signed posts by
// spec.Concurrency goroutines.
func runRaw(ctx context.Context, spec workerSpec, waitGo func() error, waitStop func(), res *workerResult) error {
	hc := benchClient()
	fmt.Println("ready")
	if err := waitGo(); err != nil {
		return err
	}
	var next, ok atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, spec.Concurrency)
	for range spec.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= spec.N {
					return
				}
				h := spec.Hooks[i%len(spec.Hooks)]
				id := "msg_raw_" + strconv.Itoa(i)
				body := envelope(id, h.ID, i, spec.Pad)
				if err := postSigned(ctx, hc, h, id, "dlv_raw_"+strconv.Itoa(i), body); err != nil {
					errs <- err
					return
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	waitStop()
	res.Recorded = int(ok.Load())
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// countingDoer counts finished requests, to keep memstore's backlog
// under a bound.
type countingDoer struct {
	hc   *http.Client
	done atomic.Int64
	tick chan struct{}
}

func (d *countingDoer) Do(r *http.Request) (*http.Response, error) {
	resp, err := d.hc.Do(r)
	d.done.Add(1)
	select {
	case d.tick <- struct{}{}:
	default:
	}
	return resp, err
}

// runMem is memstore end to end in one process: it creates the
// webhooks (their secrets go out on the ready line), then enqueues
// spec.N deliveries and drains them.
func runMem(ctx context.Context, spec workerSpec, waitGo func() error, waitStop func(), res *workerResult) error {
	store := memstore.New(&memstore.Config{MaxActive: -1})
	doer := &countingDoer{hc: webhook.NewHTTPClient(&webhook.ClientConfig{Network: webhook.NetworkPolicy{AllowPrivate: true}}), tick: make(chan struct{}, 1)}
	svc, err := webhook.NewService(store, &webhook.Config{Network: webhook.NetworkPolicy{AllowPrivate: true}, Doer: doer})
	if err != nil {
		return err
	}
	hooks, err := createHooks(ctx, svc, spec.Receiver, spec.Webhooks)
	if err != nil {
		return err
	}
	w, err := webhook.NewWorker(svc, workerConfig(spec.Concurrency))
	if err != nil {
		return err
	}
	secrets, _ := json.Marshal(hooks)
	fmt.Printf("ready %s\n", secrets)
	if err := waitGo(); err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	events := spec.N / spec.Webhooks
	if spec.Backlog == 0 {
		for i := range events {
			if _, err := svc.TriggerEvent(ctx, benchEvent, eventData(i, spec.Pad), "production"); err != nil {
				return err
			}
		}
		go func() { runErr <- w.Run(runCtx) }()
	} else {
		go func() { runErr <- w.Run(runCtx) }()
		for i := range events {
			for int64(i*spec.Webhooks)-doer.done.Load() > int64(spec.Backlog-spec.Webhooks) {
				select {
				case <-doer.tick:
				case <-time.After(time.Second):
				}
			}
			if _, err := svc.TriggerEvent(ctx, benchEvent, eventData(i, spec.Pad), "production"); err != nil {
				return err
			}
		}
	}
	waitStop()
	stop()
	if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	res.Recorded, err = countDelivered(ctx, svc, hookIDs(hooks))
	return err
}

// workerConfig is the library's worker as the contenders run it: the
// defaults, except that the per-host cap is off, because every webhook
// of the harness posts to the one receiver.
func workerConfig(concurrency int) *webhook.WorkerConfig {
	return &webhook.WorkerConfig{Concurrency: concurrency, MaxPerHost: concurrency}
}

// newPool opens a pool whose connections are named app.
func newPool(ctx context.Context, db, app string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(db)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	return pgxpool.NewWithConfig(ctx, cfg)
}

// runPG is one pgstore worker process, the documented deployment: it
// does not enqueue, it only runs a Worker.
func runPG(ctx context.Context, spec workerSpec, waitGo func() error, waitStop func()) error {
	pool, err := newPool(ctx, spec.DB, spec.App, spec.MaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	store, err := pgstore.New(pool, &pgstore.Config{Schema: spec.Schema})
	if err != nil {
		return err
	}
	svc, err := webhook.NewService(store, &webhook.Config{Network: webhook.NetworkPolicy{AllowPrivate: true}})
	if err != nil {
		return err
	}
	w, err := webhook.NewWorker(svc, workerConfig(spec.Concurrency))
	if err != nil {
		return err
	}
	fmt.Println("ready")
	if err := waitGo(); err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(runCtx) }()
	waitStop()
	stop()
	if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// riverArgs is the River contender's job: one webhook delivery, its
// body stored in the job as a string (byte for byte).
type riverArgs struct {
	Hook       hookSpec `json:"hook"`
	MsgID      string   `json:"msg_id"`
	DeliveryID string   `json:"delivery_id"`
	Body       string   `json:"body"`
}

// Kind implements river.JobArgs.
func (riverArgs) Kind() string { return "webhook_delivery" }

// riverWorker posts a riverArgs with net/http.
type riverWorker struct {
	river.WorkerDefaults[riverArgs]
	hc *http.Client
}

// Work implements river.Worker.
func (w *riverWorker) Work(ctx context.Context, job *river.Job[riverArgs]) error {
	return postSigned(ctx, w.hc, job.Args.Hook, job.Args.MsgID, job.Args.DeliveryID, []byte(job.Args.Body))
}

// riverConfig is the tuned River configuration of the issue.
func riverConfig(schema string, workers *river.Workers, concurrency int) *river.Config {
	cfg := &river.Config{Schema: schema, Logger: discardLogger()}
	if workers != nil {
		cfg.Workers = workers
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: concurrency}}
		cfg.FetchCooldown = 2 * time.Millisecond
		cfg.FetchPollInterval = 5 * time.Millisecond
	}
	return cfg
}

// runRiver is one River worker process.
func runRiver(ctx context.Context, spec workerSpec, waitGo func() error, waitStop func()) error {
	pool, err := newPool(ctx, spec.DB, spec.App, spec.MaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &riverWorker{hc: benchClient()}); err != nil {
		return err
	}
	client, err := river.NewClient(riverpgxv5.New(pool), riverConfig(spec.Schema, workers, spec.Concurrency))
	if err != nil {
		return err
	}
	fmt.Println("ready")
	if err := waitGo(); err != nil {
		return err
	}
	if err := client.Start(ctx); err != nil {
		return err
	}
	waitStop()
	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return client.Stop(stopCtx)
}
