// Command server runs the library's REST API (package httpapi) as a
// multi-tenant HTTP server: the API under /api, the portal (package
// portal) under /portal, a Worker delivering in the background, and a
// local receiver under /receiver that verifies every signature, so that
// the whole round trip works offline.
//
//	go run ./examples/server                  # in memory
//	go run ./examples/server -db postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//
// Requests authenticate with a bearer token that names their tenant
// (-tokens "token=tenant,…"; without it, two demo tokens printed at
// start); browsers sign in to the portal with the same tokens through a
// login form and get a session cookie (see portal.go). SIGINT or SIGTERM
// stops it gracefully: the worker finishes the attempts under way, then
// the HTTP server the requests under way. The README's "Example server"
// section is a curl session against it.
package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/httpapi"
	"github.com/analytics-webhooks/webhook/memstore"
	"github.com/analytics-webhooks/webhook/storage/pgstore"
)

// demoTokens are the tokens a server started without -tokens accepts.
var demoTokens = map[string]string{"demo-acme": "acme", "demo-globex": "globex"}

// options is what the flags configure.
type options struct {
	addr   string            // listen address
	db     string            // PostgreSQL URL; empty for memstore
	schema string            // pgstore's schema
	tokens map[string]string // bearer token → tenant
	// poll is the worker's PollInterval (0: the default).
	poll time.Duration
	// shutdown bounds each step of a graceful stop.
	shutdown time.Duration
}

func main() {
	o := options{tokens: demoTokens}
	flag.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address to listen on")
	flag.StringVar(&o.db, "db", "", "PostgreSQL URL; empty keeps everything in memory")
	flag.StringVar(&o.schema, "schema", pgstore.DefaultSchema, "PostgreSQL schema of the tables (with -db)")
	tokens := flag.String("tokens", "", `bearer tokens and their tenants, "token=tenant,…" (default: two demo tokens)`)
	flag.DurationVar(&o.shutdown, "shutdown-timeout", 10*time.Second, "how long each step of a graceful stop may take")
	flag.Parse()
	if *tokens != "" {
		var err error
		if o.tokens, err = parseTokens(*tokens); err != nil {
			fmt.Fprintln(os.Stderr, "server:", err)
			os.Exit(2)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, o, os.Stdout, log, nil); err != nil {
		log.Error("server stopped", "err", err)
		os.Exit(1)
	}
}

// parseTokens reads -tokens.
func parseTokens(s string) (map[string]string, error) {
	out := map[string]string{}
	for pair := range strings.SplitSeq(s, ",") {
		token, tenant, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || token == "" || tenant == "" {
			return nil, fmt.Errorf("-tokens: %q is not token=tenant", pair)
		}
		out[token] = tenant
	}
	return out, nil
}

// run serves until ctx is done, then stops gracefully. It calls started,
// if not nil, with the server's base URL once it accepts requests.
func run(ctx context.Context, o options, out io.Writer, log *slog.Logger, started func(baseURL string)) error {
	store, closeStore, err := openStore(ctx, o)
	if err != nil {
		return err
	}
	defer closeStore()
	svc, err := webhook.NewService(store, &webhook.Config{
		// The built-in receiver is on this machine. The library refuses
		// loopback and private addresses by default; allow loopback
		// only, not the private networks around a shared server.
		Network: webhook.NetworkPolicy{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}},
		Logger:  log,
	})
	if err != nil {
		return err
	}
	worker, err := webhook.NewWorker(svc, &webhook.WorkerConfig{PollInterval: o.poll, ShutdownTimeout: o.shutdown})
	if err != nil {
		return err
	}
	api, err := httpapi.New(svc, &httpapi.Config{Tenant: bearerTenant(o.tokens), Logger: log})
	if err != nil {
		return err
	}
	rc := newReceiver(svc, log)
	mux := http.NewServeMux()
	mux.Handle(httpapi.DefaultPrefix+"/", api)
	if err := mountPortal(mux, svc, o.tokens, log); err != nil {
		return err
	}
	mux.Handle("/receiver/", rc)
	mux.Handle("GET /receiver", rc)

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	base := "http://" + ln.Addr().String()
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWorker()
	workerDone := make(chan error, 1)
	go func() { workerDone <- worker.Run(workerCtx) }()
	banner(out, base, o.tokens, o.db != "")
	if started != nil {
		started(base)
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-serveDone: // the listener failed
	case err := <-workerDone:
		workerDone <- err
	}
	// Stop the worker first, while the receiver still answers the
	// attempts it finishes; then the HTTP server, which lets the
	// requests under way finish.
	stopWorker()
	werr := <-workerDone
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdown)
	defer cancel()
	herr := srv.Shutdown(sctx)
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	fmt.Fprintln(out, "stopped")
	return errors.Join(serveErr, werr, herr)
}

// openStore returns memstore, or pgstore over o.db (migrated), and what
// closes it.
func openStore(ctx context.Context, o options) (webhook.Storage, func(), error) {
	if o.db == "" {
		return memstore.New(nil), func() {}, nil
	}
	pool, err := pgxpool.New(ctx, o.db)
	if err != nil {
		return nil, nil, err
	}
	store, err := pgstore.New(pool, &pgstore.Config{Schema: o.schema})
	if err == nil {
		err = store.Migrate(ctx)
	}
	if err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("PostgreSQL at -db: %w", err)
	}
	return store, pool.Close, nil
}

// tokenTenant returns the lookup of a token's tenant. It compares the
// token with every known one in constant time, so that timing tells
// nothing of how much of a guess was right.
func tokenTenant(tokens map[string]string) func(token string) (string, bool) {
	type entry struct{ token, tenant []byte }
	var known []entry
	for _, token := range slices.Sorted(maps.Keys(tokens)) {
		known = append(known, entry{[]byte(token), []byte(tokens[token])})
	}
	return func(token string) (string, bool) {
		tenant := ""
		for _, e := range known {
			if subtle.ConstantTimeCompare(e.token, []byte(token)) == 1 {
				tenant = string(e.tenant)
			}
		}
		return tenant, tenant != ""
	}
}

// bearerTenant returns the Tenant function of httpapi.Config: the tenant
// of the request's bearer token, or httpapi.ErrUnauthenticated (401).
func bearerTenant(tokens map[string]string) func(*http.Request) (string, error) {
	tenantOf := tokenTenant(tokens)
	return func(r *http.Request) (string, error) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			return "", fmt.Errorf("%w: send Authorization: Bearer <token>", httpapi.ErrUnauthenticated)
		}
		tenant, ok := tenantOf(token)
		if !ok {
			return "", fmt.Errorf("%w: unknown token", httpapi.ErrUnauthenticated)
		}
		return tenant, nil
	}
}

// banner tells how to reach the server.
func banner(out io.Writer, base string, tokens map[string]string, pg bool) {
	storage := "memory (everything is lost at exit; -db for PostgreSQL)"
	if pg {
		storage = "PostgreSQL"
	}
	fmt.Fprintf(out, "webhook API on %s%s, storage: %s\n", base, httpapi.DefaultPrefix, storage)
	fmt.Fprintf(out, "portal: %s%s/ (sign in with a token)\n", base, portalPrefix)
	fmt.Fprintf(out, "local receiver: %s/receiver/<name> (GET %s/receiver lists what arrived)\n", base, base)
	fmt.Fprintln(out, "bearer tokens:")
	for _, token := range slices.Sorted(maps.Keys(tokens)) {
		fmt.Fprintf(out, "  %s  tenant %s\n", token, tokens[token])
	}
	fmt.Fprintf(out, "try: curl -s %s%s/webhooks -H 'Authorization: Bearer <token>'\n", base, httpapi.DefaultPrefix)
}
