package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/storage/pgstore"
)

// contender is one row of the throughput table.
type contender struct {
	name  string // short name, used in schema names and -only
	label string
	kind  string // raw, mem, pg or river
	procs int    // worker processes
	// backlog, for mem: 0 enqueues everything first; else the most queued.
	backlog int
}

func contenders(o options) []contender {
	return []contender{
		{name: "raw", label: "raw net/http client loop", kind: "raw", procs: 1},
		{name: "mem", label: fmt.Sprintf("memstore end to end, backlog %d", o.N), kind: "mem", procs: 1},
		{name: "mem256", label: "memstore end to end, backlog < 256", kind: "mem", procs: 1, backlog: 256},
		{name: "pg1", label: "pgstore, 1 worker process", kind: "pg", procs: 1},
		{name: "pg2", label: "pgstore, 2 worker processes", kind: "pg", procs: 2},
		{name: "river1", label: "River + net/http, 1 process", kind: "river", procs: 1},
		{name: "river2", label: "River + net/http, 2 processes", kind: "river", procs: 2},
	}
}

// runResult is one contender's run.
type runResult struct {
	Elapsed   time.Duration
	N         int
	WorkerCPU time.Duration
	PGCPU     time.Duration // zero without PostgreSQL
	RecvCPU   time.Duration
	BodyBytes int
}

func (r runResult) rate() float64 { return float64(r.N) / r.Elapsed.Seconds() }

// env is what every run shares.
type env struct {
	o    options
	pool *pgxpool.Pool // the harness's own connections
	rc   *receiverClient
	recv *child
}

func (e *env) schema(name string, rep int) string {
	return fmt.Sprintf("wbench_%d_%s_%d", os.Getpid(), name, rep)
}

func (e *env) dropSchema(s string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e.pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{s}.Sanitize()+` CASCADE`)
}

// syntheticHooks are the endpoints of the raw and River contenders.
func (e *env) syntheticHooks() ([]hookSpec, error) {
	hs := make([]hookSpec, e.o.Webhooks)
	for i := range hs {
		s, err := webhook.NewSecret()
		if err != nil {
			return nil, err
		}
		hs[i] = hookSpec{ID: "wh_" + strconv.Itoa(i), URL: e.rc.base + "/hook", Secret: s}
	}
	return hs, nil
}

// run runs one contender once, on a fresh schema, and checks it.
func (e *env) run(ctx context.Context, c contender, rep int) (runResult, error) {
	o := e.o
	spec := workerSpec{Kind: c.kind, DB: o.DB, Receiver: e.rc.base, N: o.N, Webhooks: o.Webhooks, Pad: o.Pad,
		Concurrency: o.Concurrency, MaxConns: o.MaxConns, Backlog: c.backlog, App: fmt.Sprintf("wbench-%d-%s-%d", os.Getpid(), c.name, rep)}
	var secrets map[string]string
	var count func(context.Context) (int, error) // recorded deliveries, for pg and river
	switch c.kind {
	case "raw":
		hs, err := e.syntheticHooks()
		if err != nil {
			return runResult{}, err
		}
		spec.Hooks, secrets = hs, secretsOf(hs)
	case "pg":
		spec.Schema = e.schema(c.name, rep)
		defer e.dropSchema(spec.Schema)
		svc, ids, hs, err := e.preparePG(ctx, spec.Schema)
		if err != nil {
			return runResult{}, fmt.Errorf("prepare: %w", err)
		}
		secrets = secretsOf(hs)
		count = func(ctx context.Context) (int, error) { return countDelivered(ctx, svc, ids) }
	case "river":
		spec.Schema = e.schema(c.name, rep)
		defer e.dropSchema(spec.Schema)
		hs, err := e.syntheticHooks()
		if err != nil {
			return runResult{}, err
		}
		secrets = secretsOf(hs)
		if err := e.prepareRiver(ctx, spec.Schema, hs, rep); err != nil {
			return runResult{}, fmt.Errorf("prepare: %w", err)
		}
		count = func(ctx context.Context) (int, error) {
			var n int
			err := e.pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{spec.Schema, "river_job"}.Sanitize()+` WHERE state = 'completed'`).Scan(&n)
			return n, err
		}
	}

	var kids []*child
	defer func() {
		for _, k := range kids {
			if k.cmd.ProcessState == nil {
				k.kill()
			}
		}
	}()
	for range c.procs {
		k, err := startChild(ctx, "worker", spec)
		if err != nil {
			return runResult{}, err
		}
		kids = append(kids, k)
		if c.kind == "mem" {
			var hs []hookSpec
			if err := json.Unmarshal([]byte(k.ready), &hs); err != nil {
				return runResult{}, fmt.Errorf("mem worker's hooks: %w", err)
			}
			secrets = secretsOf(hs)
		}
	}
	if err := e.rc.reset(ctx, secrets, o.SampleEvery); err != nil {
		return runResult{}, err
	}

	pg := pgBackends{pool: e.pool, apps: []string{spec.App}}
	cpu0, err := e.cpu(ctx, kids, pg, c.kind)
	if err != nil {
		return runResult{}, err
	}
	start := time.Now()
	for _, k := range kids {
		if err := k.send("go"); err != nil {
			return runResult{}, err
		}
	}
	if _, _, err := e.rc.waitFor(ctx, o.N, "", o.RunTimeout); err != nil {
		return runResult{}, err
	}
	elapsed := time.Since(start)
	cpu1, err := e.cpu(ctx, kids, pg, c.kind)
	if err != nil {
		return runResult{}, err
	}

	recorded := 0
	for _, k := range kids {
		var res workerResult
		if err := k.finish(ctx, &res); err != nil {
			return runResult{}, err
		}
		if res.Err != "" {
			return runResult{}, errors.New("worker: " + res.Err)
		}
		recorded += res.Recorded
	}
	if count != nil {
		if recorded, err = count(ctx); err != nil {
			return runResult{}, fmt.Errorf("count recorded: %w", err)
		}
	}
	st, _, err := e.rc.waitFor(ctx, 0, "", 0)
	if err != nil {
		return runResult{}, err
	}
	var problems []error
	if recorded != o.N {
		problems = append(problems, fmt.Errorf("%d deliveries recorded, want %d", recorded, o.N))
	}
	if st.Requests != o.N || st.Distinct != o.N {
		problems = append(problems, fmt.Errorf("receiver got %d requests with %d distinct webhook-ids, want %d", st.Requests, st.Distinct, o.N))
	}
	if st.Verified == 0 || st.BadSignatures > 0 {
		problems = append(problems, fmt.Errorf("signatures: %d sampled verified, %d bad (%s)", st.Verified, st.BadSignatures, st.FirstBad))
	}
	if err := errors.Join(problems...); err != nil {
		return runResult{}, fmt.Errorf("check failed: %w", err)
	}
	return runResult{Elapsed: elapsed, N: o.N, WorkerCPU: cpu1.worker - cpu0.worker, PGCPU: cpuDelta(cpu0.pg, cpu1.pg),
		RecvCPU: cpu1.recv - cpu0.recv, BodyBytes: st.BodyBytes / max(st.Requests, 1)}, nil
}

// cpuSample is the CPU used so far by the worker processes, the
// receiver and the PostgreSQL backends of the run's connections.
type cpuSample struct {
	worker, recv time.Duration
	pg           map[int]time.Duration
}

func (e *env) cpu(ctx context.Context, kids []*child, pg pgBackends, kind string) (cpuSample, error) {
	var s cpuSample
	for _, k := range kids {
		c, err := cpuOf(k.pid())
		if err != nil {
			return s, err
		}
		s.worker += c
	}
	c, err := cpuOf(e.recv.pid())
	if err != nil {
		return s, err
	}
	s.recv = c
	if kind == "pg" || kind == "river" {
		if s.pg, err = pg.sample(ctx); err != nil {
			return s, err
		}
	}
	return s, nil
}

// preparePG migrates a fresh pgstore schema, creates the webhooks and
// enqueues the backlog through TriggerEvent, 50 deliveries a call.
func (e *env) preparePG(ctx context.Context, schema string) (*webhook.Service, []string, []hookSpec, error) {
	store, err := pgstore.New(e.pool, &pgstore.Config{Schema: schema})
	if err != nil {
		return nil, nil, nil, err
	}
	if err := store.Migrate(ctx); err != nil {
		return nil, nil, nil, err
	}
	svc, err := webhook.NewService(store, &webhook.Config{Network: webhook.NetworkPolicy{AllowPrivate: true}})
	if err != nil {
		return nil, nil, nil, err
	}
	hs, err := createHooks(ctx, svc, e.rc.base, e.o.Webhooks)
	if err != nil {
		return nil, nil, nil, err
	}
	for i := range e.o.N / e.o.Webhooks {
		if _, err := svc.TriggerEvent(ctx, benchEvent, eventData(i, e.o.Pad), "production"); err != nil {
			return nil, nil, nil, err
		}
	}
	return svc, hookIDs(hs), hs, nil
}

// migrateRiver creates schema and River's tables in it.
func migrateRiver(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	if _, err := pool.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		return err
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: schema, Logger: discardLogger()})
	if err != nil {
		return err
	}
	_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
}

// prepareRiver migrates a fresh River schema and inserts the backlog
// with InsertMany.
func (e *env) prepareRiver(ctx context.Context, schema string, hs []hookSpec, rep int) error {
	if err := migrateRiver(ctx, e.pool, schema); err != nil {
		return err
	}
	client, err := river.NewClient(riverpgxv5.New(e.pool), riverConfig(schema, nil, 0))
	if err != nil {
		return err
	}
	const chunk = 1000
	batch := make([]river.InsertManyParams, 0, chunk)
	for i := range e.o.N {
		h := hs[i%len(hs)]
		id := fmt.Sprintf("msg_river_%d_%d", rep, i)
		batch = append(batch, river.InsertManyParams{Args: riverArgs{Hook: h, MsgID: id, DeliveryID: "dlv_" + id, Body: string(envelope(id, h.ID, i, e.o.Pad))}})
		if len(batch) == chunk || i == e.o.N-1 {
			if _, err := client.InsertMany(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}
