// Package pgstore is a PostgreSQL webhook.Storage on pgx v5: durable, and
// shared by any number of worker processes on any number of machines.
//
//	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
//	store, err := pgstore.New(pool, nil)
//	err = store.Migrate(ctx) // safe to run from every process at start-up
//	svc, err := webhook.NewService(store, nil)
//
// Claims are one statement (FOR UPDATE SKIP LOCKED), so workers never
// wait for each other; results are fenced by the lease token; a trigger
// call's payloads and deliveries are inserted in one transaction, with a
// NOTIFY that wakes idle workers in every process when it commits. Every
// webhook change NOTIFYs too, in its own transaction, so that other
// processes' matching sees it at once (webhook.Service.Watch). Leases are
// set and compared on the database's clock, so skewed clocks on the
// workers' machines never make a live lease look expired.
//
// # Transactional outbox
//
// To enqueue webhooks if and only if your own transaction commits, pass
// an Enqueuer bound to it:
//
//	tx, err := pool.Begin(ctx)
//	defer tx.Rollback(ctx)
//	// ... your own writes on tx ...
//	_, err = svc.TriggerEvent(ctx, "order.created", data, "production", webhook.WithEnqueuer(store.Tx(tx)))
//	err = tx.Commit(ctx)
//
// # Pool size
//
// A process that runs a webhook.Worker needs more connections than
// pgxpool's default (4, or the number of CPUs if more): Listen holds one
// for as long as the worker runs, and claims, the batched result writes,
// webhook reads and trigger calls each take one while they run. With too
// few, attempts queue for a connection and throughput falls well before
// the worker's Concurrency is reached. Allow at least MinPoolConns,
// e.g. with pool_max_conns=16 in the connection string, or set
// pgxpool.Config.MaxConns; New logs a warning (to Config.Logger) when the
// pool allows fewer. A process that only triggers needs fewer, which is
// why New warns rather than fails.
//
// # Retention
//
// Prune deletes finished deliveries, their attempts and unreferenced
// payloads older than a cut-off, in small batches.
//
// # Tables and indexes
//
// Unfinished deliveries (pending, retrying, delivering) live in a table
// of their own, the queue; the statement that records a final result
// moves the delivery to the history table, deliveries, where it is
// written once and then only read (and redelivered, and pruned). The
// queue's size follows the backlog, not the retention. A claim sets a
// row's lease and attempt number and leaves its indexed columns alone,
// so PostgreSQL updates it in place (a HOT update, for which the queue's
// fillfactor leaves room) and writes no index entry; a leased row is
// delivering. A claim reads a bounded window of the earliest due rows,
// and when the deliveries of webhooks it must skip (those at a worker's
// cap) fill that window, it reads the queue a webhook at a time instead:
// a long backlog of one webhook never slows the claims of the others.
// Migration 008 moves what is unfinished when it runs; a process still
// running an older version fails to enqueue after it, rather than write
// deliveries no worker would claim: replace older processes when you
// migrate.
//
// The payloads of one trigger call differ only at their start (the
// payload and webhook IDs): Enqueue stores the tail their bodies share
// once, so an event's data is stored once however many webhooks it fans
// out to, and every body reads back byte for byte.
//
// At millions of rows the queries stay index-bound: claims read the
// queue's (due_at, id) index, or a webhook's earliest due rows through
// (webhook_id, due_at, id); history pages read the history's
// (webhook_id, id) or (webhook_id, status, id) backwards from the cursor
// and the queue's (webhook_id, status, id) a status at a time, at most a
// page from each; pruning reads a partial index on completed_at;
// payloads still referenced by the history are found through an index on
// deliveries.payload_id, and those referenced by the queue (redeliveries)
// by one read of the queue per batch; replays read a partial index of the
// failed deliveries not replayed yet. See the files in migrations/.
//
// # Stateful triggers and metrics
//
// Store implements webhook.TriggerStateStore and webhook.MetricStore. A
// trigger state is a row changed by compare-and-set on its version; the
// change and the delivery it sends commit in one transaction. Metric
// buckets are merged by one upsert per flush, which locks rows in key
// order so that concurrent flushes never deadlock; queries aggregate in
// the database, reading one range of the primary key per environment.
// They use date_bin, so PostgreSQL 14 or later.
//
// # Errors
//
// A store whose schema Migrate has not brought up to date fails with
// ErrNotMigrated. A connection lost while an enqueue commits fails with
// webhook.ErrCommitUnknown: the rows may or may not exist, and a retry
// should carry the same idempotency key.
package pgstore

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/analytics-webhooks/webhook"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Config configures a Store. The zero value is valid.
type Config struct {
	// Schema is the PostgreSQL schema that holds the tables: lower-case
	// letters, digits and underscores, starting with a letter or
	// underscore, at most 40 bytes. Defaults to "webhook".
	Schema string
	// Logger receives the notification listener's logs and the warning
	// that a caller's clock is far from the database's. Defaults to a
	// logger that discards everything.
	Logger *slog.Logger
}

// MinPoolConns is the least pool size (pgxpool.Config.MaxConns) New
// accepts without a warning: the connection Listen holds, one claim,
// one batch write of results, and room for webhook reads and trigger
// calls at the same time (see the package documentation).
const MinPoolConns = 8

// DefaultSchema is the schema used when Config.Schema is empty.
const DefaultSchema = "webhook"

var schemaPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,39}$`)

// Store is a webhook.Storage in PostgreSQL. It is safe for concurrent
// use, also by several processes sharing the database.
type Store struct {
	pool    *pgxpool.Pool
	schema  string // the raw schema name
	channel string // the NOTIFY channel
	log     *slog.Logger
	sql     statements
	replay  replayStatements
	// triggers and metrics: the SQL of trigger states and metric buckets.
	triggers triggerStatements
	metrics  metricStatements
	// callerClock makes claims measure leases with ClaimParams.Now
	// instead of the database's clock; only tests that simulate time
	// set it (see export_test.go).
	callerClock bool
	skewWarned  atomic.Int64 // Unix nanoseconds of the last clock-skew warning
}

var (
	_ webhook.Storage       = (*Store)(nil)
	_ webhook.Notifier      = (*Store)(nil)
	_ webhook.Pruner        = (*Store)(nil)
	_ webhook.BatchRecorder = (*Store)(nil)
)

// New returns a Store over pool. It does not touch the database; call
// Migrate before first use. It returns an error wrapping
// webhook.ErrInvalid for a nil pool or a bad schema name, and logs a
// warning to Config.Logger when the pool allows fewer than MinPoolConns
// connections.
func New(pool *pgxpool.Pool, cfg *Config) (*Store, error) {
	if pool == nil {
		return nil, fmt.Errorf("%w: pgstore.New: nil pool", webhook.ErrInvalid)
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.Schema == "" {
		c.Schema = DefaultSchema
	}
	if !schemaPattern.MatchString(c.Schema) {
		return nil, fmt.Errorf("%w: pgstore.New: schema %q must match %s", webhook.ErrInvalid, c.Schema, schemaPattern)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if n := pool.Config().MaxConns; n < MinPoolConns {
		c.Logger.Warn("pgstore: the pool allows too few connections for a worker; allow at least pgstore.MinPoolConns (e.g. pool_max_conns=16 in the connection string) in processes that run one",
			"max_conns", n, "min_conns_for_a_worker", MinPoolConns)
	}
	return &Store{
		pool:    pool,
		schema:  c.Schema,
		channel: c.Schema + "_deliveries",
		log:     c.Logger,
		sql:     newStatements(pgx.Identifier{c.Schema}.Sanitize()),
		replay:  newReplayStatements(pgx.Identifier{c.Schema}.Sanitize()),

		triggers: newTriggerStatements(pgx.Identifier{c.Schema}.Sanitize()),
		metrics:  newMetricStatements(pgx.Identifier{c.Schema}.Sanitize()),
	}, nil
}

// Schema returns the schema the store's tables live in.
func (s *Store) Schema() string { return s.schema }

// Migrate creates the schema and applies every embedded migration not yet
// applied, in the order of their version numbers (the digits before the
// first underscore of the file name), in one transaction. A version
// missing from the applied ones is applied even when later ones were
// applied before it, so migrations that do not depend on each other may
// land in any order. Several processes may call it at once: an advisory
// lock makes them take turns, and each migration is applied once.
func (s *Store) Migrate(ctx context.Context) error {
	return s.migrate(ctx, migrationFiles)
}

// migrate applies the migrations in fsys.
func (s *Store) migrate(ctx context.Context, fsys fs.FS) error {
	ms, err := readMigrations(fsys)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	defer tx.Rollback(ctx)
	q := pgx.Identifier{s.schema}.Sanitize()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('analytics-webhooks:' || $1))`, s.schema); err != nil {
		return fmt.Errorf("pgstore: migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+q); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+q+`.schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	var applied []int32
	rows, err := tx.Query(ctx, `SELECT version FROM `+q+`.schema_migrations`)
	if err == nil {
		applied, err = pgx.CollectRows(rows, pgx.RowTo[int32])
	}
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	for _, m := range ms {
		if slices.Contains(applied, m.version) {
			continue
		}
		if _, err := tx.Exec(ctx, strings.ReplaceAll(m.body, "{{schema}}", q)); err != nil {
			return fmt.Errorf("pgstore: migrate: %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+q+`.schema_migrations (version) VALUES ($1)`, m.version); err != nil {
			return fmt.Errorf("pgstore: migrate: %s: %w", m.name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	return nil
}

// migration is one embedded migration file.
type migration struct {
	version int32
	name    string
	body    string
}

// readMigrations returns the migrations in fsys's migrations directory
// in ascending version order. Gaps in the numbering are allowed; a file
// name without a version, or two files with one version, are errors.
func readMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	ms := make([]migration, 0, len(names))
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		digits, _, ok := strings.Cut(base, "_")
		version, err := strconv.ParseInt(digits, 10, 32)
		if !ok || err != nil || version < 1 {
			return nil, fmt.Errorf("bad migration name %s: want a positive version, an underscore and a name", base)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: int32(version), name: base, body: string(body)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s have one version", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

// querier is what a pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// ErrNotMigrated reports that the store's tables, or columns a newer
// version of pgstore needs, do not exist: Store.Migrate has not been run
// on the schema since the program's pgstore version was built. Run it
// (it is safe to run from every process at start-up).
var ErrNotMigrated = errors.New("pgstore: the schema is not migrated; run Store.Migrate")

// translate maps PostgreSQL errors onto the core's sentinels.
func translate(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf(format, args...)
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%s: %w", what, webhook.ErrNotFound)
	case errors.As(err, &pe):
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%s: %w: %s", what, webhook.ErrDuplicate, pe.Detail)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%s: %w: %s", what, webhook.ErrNotFound, pe.Detail)
		case "22P02", "22021", "22007", "22008", "23502", "23514": // bad text, encoding, time; not null; check
			return fmt.Errorf("%s: %w: %s", what, webhook.ErrInvalid, pe.Message)
		case "42P01", "42703", "3F000": // undefined table, column, schema
			return fmt.Errorf("%s: %w: %s", what, ErrNotMigrated, pe.Message)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// validID reports whether id is a UUID, the form of every ID this store
// keeps.
func validID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil && len(id) == 36
}

// utc returns t in UTC, or the zero time for a NULL.
func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// text makes s storable in a text column: valid UTF-8 without NUL bytes.
func text(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// ---- webhooks ----

// ---- enqueue ----

// ---- claims and results ----

// ---- history ----

// ---- retention ----
