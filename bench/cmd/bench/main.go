// Command bench runs the library side by side with the alternatives a
// user would otherwise pick, on this machine and one PostgreSQL, and
// prints the figures BENCHMARKS.md quotes:
//
//	cd bench && go run ./cmd/bench -db 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
//
// Every contender posts to one receiver process (answering 204) that
// counts requests and distinct webhook-ids and verifies a sample of the
// signatures. The pgstore and River contenders run their workers in
// processes of their own, as they are deployed. -quick runs a smoke test
// in well under a minute. A failed check fails the command.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"
)

// options are the command's flags.
type options struct {
	DB          string
	Quick       bool
	Reps        int
	N           int
	Webhooks    int
	Pad         int
	Concurrency int
	MaxConns    int32
	SampleEvery int
	Only        string
	Extras      bool
	RunTimeout  time.Duration
}

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(roleMain(role))
	}
	var o options
	flag.StringVar(&o.DB, "db", os.Getenv("WEBHOOK_TEST_DATABASE_URL"), "PostgreSQL URL (default $WEBHOOK_TEST_DATABASE_URL)")
	flag.BoolVar(&o.Quick, "quick", false, "smoke test: small N, 1 repetition, small extras")
	flag.IntVar(&o.Reps, "reps", 0, "repetitions (default 3, 1 with -quick)")
	flag.IntVar(&o.N, "n", 0, "deliveries per run, a multiple of -webhooks (default 20000, 1000 with -quick)")
	flag.IntVar(&o.Webhooks, "webhooks", 50, "webhooks per run")
	flag.IntVar(&o.Pad, "pad", 860, "filler bytes in each event's data (860 makes ~1 KiB bodies)")
	flag.IntVar(&o.Concurrency, "concurrency", 32, "requests in flight per worker process")
	var maxConns int
	flag.IntVar(&maxConns, "max-conns", 16, "pgxpool connections per worker process, pgstore and River alike (0: pgxpool's default)")
	flag.IntVar(&o.SampleEvery, "sample-every", 50, "the receiver verifies the signature of one request in this many")
	flag.StringVar(&o.Only, "only", "", "comma-separated contenders to run (raw,mem,mem256,pg1,pg2,river1,river2); default all")
	flag.BoolVar(&o.Extras, "extras", true, "also measure enqueue rates, latency, fan-out, signing and memory")
	flag.Parse()
	o.MaxConns = int32(maxConns)
	if o.DB == "" {
		o.DB = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// roleMain runs a subprocess role and returns its exit code.
func roleMain(role string) int {
	var err error
	switch role {
	case "receiver":
		err = runReceiver()
	case "worker":
		err = runWorkerRole()
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func (o *options) defaults() error {
	if o.Reps == 0 {
		o.Reps = 3
		if o.Quick {
			o.Reps = 1
		}
	}
	if o.N == 0 {
		o.N = 20000
		if o.Quick {
			o.N = 1000
		}
	}
	if o.Webhooks <= 0 || o.N%o.Webhooks != 0 {
		return fmt.Errorf("-n (%d) must be a multiple of -webhooks (%d)", o.N, o.Webhooks)
	}
	o.RunTimeout = 10 * time.Minute
	if o.Quick {
		o.RunTimeout = time.Minute
	}
	return nil
}

// run runs every contender o.Reps times, interleaved, then the extras,
// and writes the report to out.
func run(ctx context.Context, o options, out io.Writer) error {
	if err := o.defaults(); err != nil {
		return err
	}
	recv, err := startChild(ctx, "receiver", struct{}{})
	if err != nil {
		return err
	}
	defer recv.finish(context.Background(), nil)
	pool, err := newPool(ctx, o.DB, fmt.Sprintf("wbench-%d-harness", os.Getpid()), o.MaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("PostgreSQL at %s: %w", o.DB, err)
	}
	// The control client has no timeout of its own: its long polls wait
	// as long as a run may take, bounded by ctx and the poll's timeout.
	e := &env{o: o, pool: pool, rc: &receiverClient{base: "http://" + recv.ready, hc: &http.Client{}}, recv: recv}

	var cs []contender
	for _, c := range contenders(o) {
		if o.Only == "" || strings.Contains(","+o.Only+",", ","+c.name+",") {
			cs = append(cs, c)
		}
	}
	fmt.Fprintf(out, "# webhook bench: %d deliveries per run to %d webhooks, %d in flight per process, %d repetition(s)\n\n", o.N, o.Webhooks, o.Concurrency, o.Reps)
	fmt.Fprintf(out, "load before: %s\n", loadavg())
	results := make(map[string][]runResult)
	for rep := range o.Reps {
		for i := range cs {
			c := cs[(i+rep)%len(cs)] // a different order each repetition
			r, err := e.run(ctx, c, rep)
			if err != nil {
				return fmt.Errorf("%s, repetition %d: %w", c.name, rep+1, err)
			}
			fmt.Fprintf(os.Stderr, "rep %d %-7s %8.0f/s  (%s)\n", rep+1, c.name, r.rate(), r.Elapsed.Round(time.Millisecond))
			results[c.name] = append(results[c.name], r)
		}
	}
	fmt.Fprintf(out, "load after throughput runs: %s\n\n", loadavg())
	printThroughput(out, cs, results)
	if o.Extras {
		if err := runExtras(ctx, e, out); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "\nload at the end: %s\nall checks passed\n", loadavg())
	return nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
