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
// NOTIFY that wakes idle workers in every process when it commits.
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
// # Retention
//
// Prune deletes finished deliveries, their attempts and unreferenced
// payloads older than a cut-off, in small batches.
//
// # Indexes
//
// At millions of rows the queries stay index-bound: claims read the first
// rows of a partial index on due_at that holds only unfinished
// deliveries (its size follows the backlog, not the history); history
// pages read (webhook_id, id) or (webhook_id, status, id) backwards from
// the cursor; pruning reads a partial index on completed_at; payloads
// still referenced are found through an index on deliveries.payload_id.
// See migrations/001_init.sql.
package pgstore

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
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
	// Logger receives the notification listener's logs. Defaults to a
	// logger that discards everything.
	Logger *slog.Logger
}

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
}

var (
	_ webhook.Storage       = (*Store)(nil)
	_ webhook.Notifier      = (*Store)(nil)
	_ webhook.Pruner        = (*Store)(nil)
	_ webhook.BatchRecorder = (*Store)(nil)
)

// New returns a Store over pool. It does not touch the database; call
// Migrate before first use. It returns an error wrapping
// webhook.ErrInvalid for a nil pool or a bad schema name.
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
	return &Store{
		pool:    pool,
		schema:  c.Schema,
		channel: c.Schema + "_deliveries",
		log:     c.Logger,
		sql:     newStatements(pgx.Identifier{c.Schema}.Sanitize()),
	}, nil
}

// Schema returns the schema the store's tables live in.
func (s *Store) Schema() string { return s.schema }

// Migrate creates the schema and applies every embedded migration not yet
// applied, in order, in one transaction. Several processes may call it
// at once: an advisory lock makes them take turns, and each migration is
// applied once.
func (s *Store) Migrate(ctx context.Context) error {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(names)
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
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("pgstore: migrate: bad migration name %s", base)
		}
		if slices.Contains(applied, int32(version)) {
			continue
		}
		body, err := migrationFiles.ReadFile(name)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, strings.ReplaceAll(string(body), "{{schema}}", q)); err != nil {
			return fmt.Errorf("pgstore: migrate: %s: %w", base, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+q+`.schema_migrations (version) VALUES ($1)`, version); err != nil {
			return fmt.Errorf("pgstore: migrate: %s: %w", base, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	return nil
}

// querier is what a pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

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

// nullTime returns nil for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// text makes s storable in a text column: valid UTF-8 without NUL bytes.
func text(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// ---- webhooks ----

func encodeWebhook(w *webhook.Webhook) (string, error) {
	b, err := json.Marshal(w)
	if err != nil {
		return "", fmt.Errorf("%w: webhook %s: %v", webhook.ErrInvalid, w.ID, err)
	}
	return string(b), nil
}

func decodeWebhook(config string) (*webhook.Webhook, error) {
	var w webhook.Webhook
	if err := json.Unmarshal([]byte(config), &w); err != nil {
		return nil, fmt.Errorf("pgstore: stored webhook is not valid JSON: %w", err)
	}
	w.CreatedAt, w.UpdatedAt = w.CreatedAt.UTC(), w.UpdatedAt.UTC()
	for i := range w.PreviousSecrets {
		w.PreviousSecrets[i].ExpiresAt = w.PreviousSecrets[i].ExpiresAt.UTC()
	}
	return &w, nil
}

// CreateWebhook implements webhook.Storage.
func (s *Store) CreateWebhook(ctx context.Context, w *webhook.Webhook) error {
	if w == nil || !validID(w.ID) {
		return fmt.Errorf("%w: webhook ID must be a UUID", webhook.ErrInvalid)
	}
	config, err := encodeWebhook(w)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, s.sql.createWebhook, w.ID, w.TenantID, !w.Disabled, config, w.CreatedAt, w.UpdatedAt, w.Version)
	return translate(err, "webhook %s", w.ID)
}

// GetWebhook implements webhook.Storage.
func (s *Store) GetWebhook(ctx context.Context, id string) (*webhook.Webhook, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validID(id) {
		return nil, fmt.Errorf("webhook %s: %w", id, webhook.ErrNotFound)
	}
	var config string
	if err := s.pool.QueryRow(ctx, s.sql.getWebhook, id).Scan(&config); err != nil {
		return nil, translate(err, "webhook %s", id)
	}
	return decodeWebhook(config)
}

// UpdateWebhook implements webhook.Storage.
func (s *Store) UpdateWebhook(ctx context.Context, w *webhook.Webhook) error {
	if w == nil {
		return fmt.Errorf("%w: nil webhook", webhook.ErrInvalid)
	}
	if !validID(w.ID) {
		return fmt.Errorf("webhook %s: %w", w.ID, webhook.ErrNotFound)
	}
	return s.updateWebhook(ctx, s.pool, w)
}

// updateWebhook stores w as version w.Version+1 if w.Version is current.
func (s *Store) updateWebhook(ctx context.Context, q querier, w *webhook.Webhook) error {
	next := *w
	next.Version++
	config, err := encodeWebhook(&next)
	if err != nil {
		return err
	}
	tag, err := q.Exec(ctx, s.sql.updateWebhook, w.ID, w.TenantID, !w.Disabled, config, w.UpdatedAt, w.Version)
	if err != nil {
		return translate(err, "webhook %s", w.ID)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var exists bool
	if err := q.QueryRow(ctx, s.sql.webhookExists, w.ID).Scan(&exists); err != nil {
		return translate(err, "webhook %s", w.ID)
	}
	if !exists {
		return fmt.Errorf("webhook %s: %w", w.ID, webhook.ErrNotFound)
	}
	return fmt.Errorf("webhook %s: version %d is not current: %w", w.ID, w.Version, webhook.ErrConflict)
}

// DeleteWebhook implements webhook.Storage.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	if !validID(id) {
		return fmt.Errorf("webhook %s: %w", id, webhook.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, s.sql.deleteWebhook, id)
	if err != nil {
		return translate(err, "webhook %s", id)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("webhook %s: %w", id, webhook.ErrNotFound)
	}
	return nil
}

const (
	minUUID = "00000000-0000-0000-0000-000000000000"
	maxUUID = "ffffffff-ffff-ffff-ffff-ffffffffffff"
)

// ListWebhooks implements webhook.Storage.
func (s *Store) ListWebhooks(ctx context.Context, p webhook.ListWebhooksParams) ([]*webhook.Webhook, error) {
	after := p.After
	if after == "" {
		after = minUUID
	} else if !validID(after) {
		return nil, fmt.Errorf("%w: cursor %q is not a webhook ID", webhook.ErrInvalid, p.After)
	}
	rows, err := s.pool.Query(ctx, s.sql.listWebhooks, p.TenantID, after, webhook.PageLimit(p.Limit))
	if err != nil {
		return nil, translate(err, "list webhooks")
	}
	configs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, translate(err, "list webhooks")
	}
	out := make([]*webhook.Webhook, 0, len(configs))
	for _, c := range configs {
		w, err := decodeWebhook(c)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// ---- enqueue ----

// Enqueue implements webhook.Storage.
func (s *Store) Enqueue(ctx context.Context, p webhook.EnqueueParams) (webhook.EnqueueResult, error) {
	return s.enqueue(ctx, s.pool, p)
}

// Tx returns an Enqueuer that writes into tx, the caller's transaction:
// the deliveries exist if and only if tx commits, and workers are woken
// when it does. Use it with webhook.WithEnqueuer. An error inside
// Enqueue rolls back only Enqueue's own work (a savepoint), so tx stays
// usable, except when ctx ends mid-statement: pgx then closes the
// connection, and tx with it.
func (s *Store) Tx(tx pgx.Tx) webhook.Enqueuer { return txEnqueuer{s: s, tx: tx} }

type txEnqueuer struct {
	s  *Store
	tx pgx.Tx
}

func (t txEnqueuer) Enqueue(ctx context.Context, p webhook.EnqueueParams) (webhook.EnqueueResult, error) {
	return t.s.enqueue(ctx, t.tx, p)
}

func (s *Store) enqueue(ctx context.Context, q querier, p webhook.EnqueueParams) (webhook.EnqueueResult, error) {
	if err := checkEnqueue(p); err != nil {
		return webhook.EnqueueResult{}, err
	}
	tx, err := q.Begin(ctx) // a savepoint inside a caller's transaction
	if err != nil {
		return webhook.EnqueueResult{}, translate(err, "enqueue")
	}
	defer tx.Rollback(ctx)

	ids := make([]string, len(p.Deliveries))
	for i, d := range p.Deliveries {
		ids[i] = d.ID
	}
	if p.IdempotencyKey != "" {
		tag, err := tx.Exec(ctx, s.sql.insertKey, p.IdempotencyKey, ids, p.Now)
		if err != nil {
			return webhook.EnqueueResult{}, translate(err, "enqueue: idempotency key")
		}
		if tag.RowsAffected() == 0 {
			var prev []string
			if err := tx.QueryRow(ctx, s.sql.getKey, p.IdempotencyKey).Scan(&prev); err != nil {
				return webhook.EnqueueResult{}, translate(err, "enqueue: idempotency key")
			}
			return webhook.EnqueueResult{DeliveryIDs: prev, Duplicate: true}, nil
		}
	}
	if n := len(p.Payloads); n > 0 {
		var (
			pids, hooks, types, envs = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			stamps                   = make([]time.Time, n)
			bodies                   = make([][]byte, n)
		)
		for i, pl := range p.Payloads {
			pids[i], hooks[i], types[i], envs[i], stamps[i], bodies[i] = pl.ID, pl.WebhookID, text(pl.EventType), text(pl.Environment), pl.Timestamp, pl.Body
		}
		if _, err := tx.Exec(ctx, s.sql.insertPayloads, pids, hooks, types, envs, stamps, bodies); err != nil {
			return webhook.EnqueueResult{}, translate(err, "enqueue: payloads")
		}
	}
	if n := len(p.Deliveries); n > 0 {
		var (
			hooks, pids, types, statuses = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			attempts                     = make([]int32, n)
			next, created                = make([]time.Time, n), make([]time.Time, n)
		)
		for i, d := range p.Deliveries {
			hooks[i], pids[i], types[i], statuses[i] = d.WebhookID, d.PayloadID, text(d.EventType), string(d.Status)
			attempts[i], next[i], created[i] = int32(d.Attempt), d.NextAttemptAt, d.CreatedAt
		}
		var token, worker, expires any
		if p.Lease != nil {
			token, worker, expires = p.Lease.Token, text(p.Lease.WorkerID), p.Lease.ExpiresAt
		}
		if _, err := tx.Exec(ctx, s.sql.insertDeliveries, ids, hooks, pids, types, statuses, attempts, next, created, token, worker, expires); err != nil {
			return webhook.EnqueueResult{}, translate(err, "enqueue: deliveries")
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, s.channel); err != nil {
			return webhook.EnqueueResult{}, translate(err, "enqueue: notify")
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return webhook.EnqueueResult{}, translate(err, "enqueue")
	}
	return webhook.EnqueueResult{DeliveryIDs: ids}, nil
}

// checkEnqueue validates what Enqueue is given before any SQL runs.
func checkEnqueue(p webhook.EnqueueParams) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if text(p.IdempotencyKey) != p.IdempotencyKey {
		return fmt.Errorf("%w: idempotency key must be UTF-8 without NUL", webhook.ErrInvalid)
	}
	for _, pl := range p.Payloads {
		if !validID(pl.ID) || !validID(pl.WebhookID) {
			return fmt.Errorf("%w: payload and webhook IDs must be UUIDs", webhook.ErrInvalid)
		}
	}
	for _, d := range p.Deliveries {
		if !validID(d.ID) || !validID(d.WebhookID) || !validID(d.PayloadID) {
			return fmt.Errorf("%w: delivery, webhook and payload IDs must be UUIDs", webhook.ErrInvalid)
		}
	}
	return nil
}

// ---- claims and results ----

// ClaimDeliveries implements webhook.Storage.
func (s *Store) ClaimDeliveries(ctx context.Context, p webhook.ClaimParams) ([]*webhook.Claim, error) {
	if p.Limit < 1 || p.LeaseDuration <= 0 {
		return nil, fmt.Errorf("%w: claim needs a positive limit and lease duration", webhook.ErrInvalid)
	}
	exclude := make([]string, 0, len(p.ExcludeWebhooks))
	for _, id := range p.ExcludeWebhooks {
		if validID(id) {
			exclude = append(exclude, id)
		}
	}
	expires := p.Now.Add(p.LeaseDuration)
	var rows pgx.Rows
	var err error
	if p.MaxPerWebhook <= 0 || p.MaxPerWebhook >= p.Limit {
		rows, err = s.pool.Query(ctx, s.sql.claim, p.Now, exclude, p.Limit, expires, text(p.WorkerID))
	} else {
		// Rank a window of due deliveries to spread the claim across
		// webhooks; excluded webhooks never enter the window.
		window := min(p.Limit*16, 10000)
		rows, err = s.pool.Query(ctx, s.sql.claimCapped, p.Now, exclude, p.Limit, expires, text(p.WorkerID), p.MaxPerWebhook, window)
	}
	if err != nil {
		return nil, translate(err, "claim")
	}
	claims, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*webhook.Claim, error) {
		var (
			c   webhook.Claim
			d   webhook.Delivery
			pl  webhook.Payload
			cr  deliveryCols
			ts  time.Time
			exp time.Time
		)
		if err := row.Scan(append(cr.dest(&d), &c.Lease.Token, &c.Lease.WorkerID, &exp,
			&pl.WebhookID, &pl.EventType, &pl.Environment, &ts, &pl.Body)...); err != nil {
			return nil, err
		}
		cr.finish(&d)
		pl.ID, pl.Timestamp = d.PayloadID, ts.UTC()
		c.Lease.ExpiresAt = exp.UTC()
		c.Delivery, c.Payload = &d, &pl
		return &c, nil
	})
	if err != nil {
		return nil, translate(err, "claim")
	}
	return claims, nil
}

// RecordAttempt implements webhook.Storage.
func (s *Store) RecordAttempt(ctx context.Context, p webhook.RecordAttemptParams) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.Released || !p.DisableWebhook {
		// One statement does it all: one round trip, one commit.
		refused, err := s.recordOne(ctx, s.pool, p)
		return cmp.Or(err, refused)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return translate(err, "delivery %s: record attempt", p.DeliveryID)
	}
	defer tx.Rollback(ctx)
	refused, err := s.recordOne(ctx, tx, p)
	if err != nil || refused != nil {
		return cmp.Or(err, refused)
	}
	return translate(tx.Commit(ctx), "delivery %s: record attempt", p.DeliveryID)
}

// recordOne records one valid result through q, which must be a
// transaction when the result disables a webhook. It returns refused
// (ErrNotFound, ErrLeaseLost) when the result was refused, and err when
// a statement failed, which leaves a transaction unusable.
func (s *Store) recordOne(ctx context.Context, q querier, p webhook.RecordAttemptParams) (refused, err error) {
	if !validID(p.DeliveryID) {
		return fmt.Errorf("delivery %s: %w", p.DeliveryID, webhook.ErrNotFound), nil
	}
	var webhookID string
	if p.Released {
		err = q.QueryRow(ctx, s.sql.releaseDelivery, p.DeliveryID, p.Token, p.NextAttemptAt).Scan(&webhookID)
	} else {
		var next, completed any
		if p.Status.Final() {
			completed = p.Now
		} else {
			next = p.NextAttemptAt
		}
		a := p.Attempt
		err = q.QueryRow(ctx, s.sql.recordAttempt, p.DeliveryID, p.Token, string(p.Status),
			int32(a.StatusCode), text(a.ResponseBody), int64(a.Duration), text(a.Error), next, completed, a.StartedAt,
		).Scan(&webhookID)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		var exists bool
		if err := q.QueryRow(ctx, s.sql.deliveryExists, p.DeliveryID).Scan(&exists); err != nil {
			return nil, translate(err, "delivery %s: record attempt", p.DeliveryID)
		}
		if !exists {
			return fmt.Errorf("delivery %s: %w", p.DeliveryID, webhook.ErrNotFound), nil
		}
		return fmt.Errorf("delivery %s: %w", p.DeliveryID, webhook.ErrLeaseLost), nil
	}
	if err != nil {
		return nil, translate(err, "delivery %s: record attempt", p.DeliveryID)
	}
	if p.DisableWebhook && !p.Released {
		tx, ok := q.(pgx.Tx)
		if !ok {
			return nil, fmt.Errorf("pgstore: disabling a webhook needs a transaction")
		}
		if err := s.disable(ctx, tx, webhookID, p.DisabledReason, p.Now); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// RecordAttempts implements webhook.BatchRecorder, in one transaction:
// plain results are written in one statement, releases and results that
// disable a webhook one by one. If any statement fails, nothing is
// recorded and the error is returned as the second result.
func (s *Store) RecordAttempts(ctx context.Context, ps []webhook.RecordAttemptParams) ([]error, error) {
	errs := make([]error, len(ps))
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, translate(err, "record attempts")
	}
	defer tx.Rollback(ctx)
	var batch []int
	for i, p := range ps {
		if err := p.Validate(); err != nil {
			errs[i] = err
			continue
		}
		if p.Released || p.DisableWebhook || !validID(p.DeliveryID) {
			refused, err := s.recordOne(ctx, tx, p)
			if err != nil {
				return nil, err
			}
			errs[i] = refused
			continue
		}
		batch = append(batch, i)
	}
	if len(batch) == 0 {
		return errs, translate(tx.Commit(ctx), "record attempts")
	}
	n := len(batch)
	var (
		ids, tokens, statuses, bodies, msgs = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		codes                               = make([]int32, n)
		durs                                = make([]int64, n)
		nexts, completed, started           = make([]*time.Time, n), make([]*time.Time, n), make([]time.Time, n)
	)
	for j, i := range batch {
		p := ps[i]
		ids[j], tokens[j], statuses[j] = p.DeliveryID, p.Token, string(p.Status)
		codes[j], bodies[j], durs[j], msgs[j] = int32(p.Attempt.StatusCode), text(p.Attempt.ResponseBody), int64(p.Attempt.Duration), text(p.Attempt.Error)
		if p.Status.Final() {
			completed[j] = &p.Now
		} else {
			nexts[j] = &p.NextAttemptAt
		}
		started[j] = p.Attempt.StartedAt
	}
	rows, err := tx.Query(ctx, s.sql.recordAttempts, ids, tokens, statuses, codes, bodies, durs, msgs, nexts, completed, started)
	if err != nil {
		return nil, translate(err, "record attempts")
	}
	recorded, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, translate(err, "record attempts")
	}
	done := make(map[string]bool, len(recorded))
	for _, id := range recorded {
		done[id] = true // PostgreSQL prints UUIDs in lower case
	}
	var missing []string
	for _, i := range batch {
		if !done[strings.ToLower(ps[i].DeliveryID)] {
			missing = append(missing, ps[i].DeliveryID)
		}
	}
	exists := map[string]bool{}
	if len(missing) > 0 {
		rows, err := tx.Query(ctx, s.sql.existingDeliveries, missing)
		if err != nil {
			return nil, translate(err, "record attempts")
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, translate(err, "record attempts")
		}
		for _, id := range found {
			exists[id] = true
		}
	}
	for _, i := range batch {
		id := strings.ToLower(ps[i].DeliveryID)
		switch {
		case done[id]:
		case exists[id]:
			errs[i] = fmt.Errorf("delivery %s: %w", id, webhook.ErrLeaseLost)
		default:
			errs[i] = fmt.Errorf("delivery %s: %w", id, webhook.ErrNotFound)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, translate(err, "record attempts")
	}
	return errs, nil
}

// disable disables a webhook inside tx, if it still exists.
func (s *Store) disable(ctx context.Context, tx pgx.Tx, id, reason string, now time.Time) error {
	var config string
	err := tx.QueryRow(ctx, s.sql.lockWebhook, id).Scan(&config)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return translate(err, "webhook %s: disable", id)
	}
	w, err := decodeWebhook(config)
	if err != nil {
		return err
	}
	w.Disabled, w.DisabledReason, w.UpdatedAt = true, reason, now
	return s.updateWebhook(ctx, tx, w) // the row is locked: the version holds
}

// ---- history ----

// deliveryCols holds the nullable columns of a delivery row while scanning.
type deliveryCols struct {
	next, completed *time.Time
	created         time.Time
	status          string
	attempt, code   int32
	durationNS      int64
}

// deliveryColumns lists the columns dest scans, in order.
const deliveryColumns = `d.id::text, d.webhook_id::text, d.payload_id::text, d.event_type, d.status, d.attempt,
	d.next_attempt_at, d.status_code, d.response_body, d.duration_ns, d.error, d.created_at, d.completed_at`

func (c *deliveryCols) dest(d *webhook.Delivery) []any {
	return []any{&d.ID, &d.WebhookID, &d.PayloadID, &d.EventType, &c.status, &c.attempt,
		&c.next, &c.code, &d.ResponseBody, &c.durationNS, &d.Error, &c.created, &c.completed}
}

func (c *deliveryCols) finish(d *webhook.Delivery) {
	d.Status = webhook.DeliveryStatus(c.status)
	d.Attempt = int(c.attempt)
	d.NextAttemptAt = utc(c.next)
	d.StatusCode = int(c.code)
	d.Duration = time.Duration(c.durationNS)
	d.CreatedAt = c.created.UTC()
	d.CompletedAt = utc(c.completed)
}

func scanDelivery(row pgx.CollectableRow) (*webhook.Delivery, error) {
	var d webhook.Delivery
	var c deliveryCols
	if err := row.Scan(c.dest(&d)...); err != nil {
		return nil, err
	}
	c.finish(&d)
	return &d, nil
}

// GetDelivery implements webhook.Storage.
func (s *Store) GetDelivery(ctx context.Context, id string) (*webhook.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validID(id) {
		return nil, fmt.Errorf("delivery %s: %w", id, webhook.ErrNotFound)
	}
	rows, err := s.pool.Query(ctx, s.sql.getDelivery, id)
	if err != nil {
		return nil, translate(err, "delivery %s", id)
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDelivery)
	return d, translate(err, "delivery %s", id)
}

// ListDeliveries implements webhook.Storage.
func (s *Store) ListDeliveries(ctx context.Context, p webhook.ListDeliveriesParams) ([]*webhook.Delivery, error) {
	if p.WebhookID == "" {
		return nil, fmt.Errorf("%w: list deliveries needs a webhook ID", webhook.ErrInvalid)
	}
	if !validID(p.WebhookID) {
		return nil, nil
	}
	before := p.Before
	if before == "" {
		before = maxUUID
	} else if !validID(before) {
		return nil, fmt.Errorf("%w: cursor %q is not a delivery ID", webhook.ErrInvalid, p.Before)
	}
	rows, err := s.pool.Query(ctx, s.sql.listDeliveries, p.WebhookID, string(p.Status), before, webhook.PageLimit(p.Limit))
	if err != nil {
		return nil, translate(err, "list deliveries")
	}
	ds, err := pgx.CollectRows(rows, scanDelivery)
	return ds, translate(err, "list deliveries")
}

// ListAttempts implements webhook.Storage.
func (s *Store) ListAttempts(ctx context.Context, deliveryID string) ([]webhook.Attempt, error) {
	if !validID(deliveryID) {
		return nil, fmt.Errorf("delivery %s: %w", deliveryID, webhook.ErrNotFound)
	}
	rows, err := s.pool.Query(ctx, s.sql.listAttempts, deliveryID)
	if err != nil {
		return nil, translate(err, "delivery %s: attempts", deliveryID)
	}
	atts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (webhook.Attempt, error) {
		var a webhook.Attempt
		var number, code int32
		var ns int64
		err := row.Scan(&number, &a.StartedAt, &ns, &code, &a.ResponseBody, &a.Error)
		a.DeliveryID, a.Number, a.StatusCode, a.Duration, a.StartedAt = deliveryID, int(number), int(code), time.Duration(ns), a.StartedAt.UTC()
		return a, err
	})
	if err != nil {
		return nil, translate(err, "delivery %s: attempts", deliveryID)
	}
	if len(atts) == 0 {
		var exists bool
		if err := s.pool.QueryRow(ctx, s.sql.deliveryExists, deliveryID).Scan(&exists); err != nil {
			return nil, translate(err, "delivery %s", deliveryID)
		}
		if !exists {
			return nil, fmt.Errorf("delivery %s: %w", deliveryID, webhook.ErrNotFound)
		}
	}
	return atts, nil
}

// GetPayload implements webhook.Storage.
func (s *Store) GetPayload(ctx context.Context, id string) (*webhook.Payload, error) {
	if !validID(id) {
		return nil, fmt.Errorf("payload %s: %w", id, webhook.ErrNotFound)
	}
	var p webhook.Payload
	err := s.pool.QueryRow(ctx, s.sql.getPayload, id).Scan(&p.ID, &p.WebhookID, &p.EventType, &p.Environment, &p.Timestamp, &p.Body)
	if err != nil {
		return nil, translate(err, "payload %s", id)
	}
	p.Timestamp = p.Timestamp.UTC()
	return &p, nil
}

// ---- retention ----

// DefaultPruneBatch is the batch size Prune uses when none is given.
const DefaultPruneBatch = 1000

// Prune implements webhook.Pruner: it deletes deliveries that finished
// before p.Before, their attempts, payloads no delivery refers to any
// more, and idempotency keys older than p.Before, each batch in its own
// short transaction. A redelivery that races with pruning of its payload
// may fail with webhook.ErrNotFound.
func (s *Store) Prune(ctx context.Context, p webhook.PruneParams) (int, error) {
	batch := p.BatchSize
	if batch <= 0 {
		batch = DefaultPruneBatch
	}
	total := 0
	for {
		n, err := s.pruneBatch(ctx, p.Before, batch)
		total += n
		if err != nil {
			return total, err
		}
		if n < batch {
			break
		}
	}
	for {
		tag, err := s.pool.Exec(ctx, s.sql.pruneKeys, p.Before, batch)
		if err != nil {
			return total, translate(err, "prune idempotency keys")
		}
		if tag.RowsAffected() < int64(batch) {
			return total, nil
		}
	}
}

func (s *Store) pruneBatch(ctx context.Context, before time.Time, batch int) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, translate(err, "prune")
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, s.sql.pruneDeliveries, before, batch)
	if err != nil {
		return 0, translate(err, "prune deliveries")
	}
	payloads, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, translate(err, "prune deliveries")
	}
	if len(payloads) > 0 {
		if _, err := tx.Exec(ctx, s.sql.prunePayloads, payloads); err != nil {
			return 0, translate(err, "prune payloads")
		}
	}
	return len(payloads), translate(tx.Commit(ctx), "prune")
}
