package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/analytics-webhooks/webhook"
)

var _ webhook.TriggerStateStore = (*Store)(nil)

// triggerStatements holds the SQL of trigger states with the schema
// filled in.
type triggerStatements struct {
	states, insertState, updateState string
}

func newTriggerStatements(schema string) triggerStatements {
	q := func(sql string) string { return strings.ReplaceAll(sql, "{{schema}}", schema) }
	return triggerStatements{
		// key is COLLATE "C": byte order, as Go compares strings.
		states: q(`SELECT webhook_id::text, key, tenant_id, environment, version, alert, detector, schedule, updated_at
			FROM {{schema}}.trigger_states
			WHERE webhook_id = ANY ($1::text[]::uuid[])
			ORDER BY key, webhook_id`),
		// Version 0: the state must not exist. A concurrent insert of
		// the same key waits for the other transaction and, if it
		// commits, inserts nothing: a conflict, not a unique violation.
		insertState: q(`INSERT INTO {{schema}}.trigger_states
				(webhook_id, key, tenant_id, environment, version, alert, detector, schedule, updated_at)
			VALUES ($1::uuid, $2, $3, $4, 1, $5::jsonb, $6::jsonb, $7::jsonb, $8)
			ON CONFLICT (webhook_id, key) DO NOTHING`),
		// $9 is the version the writer read; the row gets $9 + 1. A
		// concurrent writer of the same version waits for the row lock,
		// then finds the version changed and updates nothing.
		updateState: q(`UPDATE {{schema}}.trigger_states
			SET tenant_id = $3, environment = $4, version = $9 + 1, alert = $5::jsonb, detector = $6::jsonb, schedule = $7::jsonb, updated_at = $8
			WHERE webhook_id = $1::uuid AND key = $2 AND version = $9`),
	}
}

// TriggerStates implements webhook.TriggerStateStore, in one query. IDs
// that are not UUIDs have no state.
func (s *Store) TriggerStates(ctx context.Context, webhookIDs []string) ([]*webhook.TriggerState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(webhookIDs))
	for _, id := range webhookIDs {
		if validID(id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, s.triggers.states, ids)
	if err != nil {
		return nil, translate(err, "trigger states")
	}
	out, err := pgx.CollectRows(rows, scanTriggerState)
	if err != nil {
		return nil, translate(err, "trigger states")
	}
	return out, nil
}

// scanTriggerState reads one row of the states query.
func scanTriggerState(r pgx.CollectableRow) (*webhook.TriggerState, error) {
	var (
		st                        webhook.TriggerState
		alert, detector, schedule []byte
		updated                   time.Time
	)
	if err := r.Scan(&st.WebhookID, &st.Key, &st.TenantID, &st.Environment, &st.Version, &alert, &detector, &schedule, &updated); err != nil {
		return nil, err
	}
	st.UpdatedAt = updated.UTC()
	if err := json.Unmarshal(alert, &st.Alert); err != nil {
		return nil, fmt.Errorf("pgstore: stored trigger state %q: alert: %w", st.Key, err)
	}
	if detector != nil {
		st.Detector = new(webhook.DetectorState)
		if err := json.Unmarshal(detector, st.Detector); err != nil {
			return nil, fmt.Errorf("pgstore: stored trigger state %q: detector: %w", st.Key, err)
		}
	}
	if schedule != nil {
		st.Schedule = new(webhook.ScheduleState)
		if err := json.Unmarshal(schedule, st.Schedule); err != nil {
			return nil, fmt.Errorf("pgstore: stored trigger state %q: schedule: %w", st.Key, err)
		}
	}
	return &st, nil
}

// SaveTriggerState implements webhook.TriggerStateStore: the
// compare-and-set is one statement, and with an enqueue the two run in
// one transaction, the enqueue with Enqueue's rules (an idempotency key
// used before enqueues nothing and is no error) and its NOTIFY, sent
// when the transaction commits. A connection lost while it commits fails
// with webhook.ErrCommitUnknown.
//
// Webhook IDs must be UUIDs, and keys, tenants and environments UTF-8
// without NUL: others fail with webhook.ErrInvalid.
func (s *Store) SaveTriggerState(ctx context.Context, p webhook.SaveTriggerStateParams) (webhook.EnqueueResult, error) {
	if err := p.Validate(); err != nil {
		return webhook.EnqueueResult{}, err
	}
	st := p.State
	if !validID(st.WebhookID) {
		return webhook.EnqueueResult{}, fmt.Errorf("%w: trigger state %s: webhook ID must be a UUID", webhook.ErrInvalid, st.Key)
	}
	if text(st.Key) != st.Key || text(st.TenantID) != st.TenantID || text(st.Environment) != st.Environment {
		return webhook.EnqueueResult{}, fmt.Errorf("%w: trigger state key, tenant and environment must be UTF-8 without NUL", webhook.ErrInvalid)
	}
	if p.Enqueue != nil {
		if err := checkEnqueue(*p.Enqueue); err != nil {
			return webhook.EnqueueResult{}, err
		}
	}
	alert, detector, schedule, err := encodeTriggerState(st)
	if err != nil {
		return webhook.EnqueueResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return webhook.EnqueueResult{}, err // nothing was sent
	}

	// JSON as text, not []byte, which the simple protocol would send as
	// bytea.
	args := []any{st.WebhookID, st.Key, st.TenantID, st.Environment, string(alert), jsonText(detector), jsonText(schedule), p.Now}
	sql := s.triggers.insertState
	if st.Version > 0 {
		sql, args = s.triggers.updateState, append(args, st.Version)
	}
	what := fmt.Sprintf("save trigger state %s", st.Key)
	conflict := func() error {
		return fmt.Errorf("trigger state %s: version %d is not current: %w", st.Key, st.Version, webhook.ErrConflict)
	}
	if p.Enqueue == nil {
		// One statement, which commits on its own.
		tag, err := s.pool.Exec(ctx, sql, args...)
		if err != nil {
			return webhook.EnqueueResult{}, commitError(err, what)
		}
		if tag.RowsAffected() == 0 {
			return webhook.EnqueueResult{}, conflict()
		}
		return webhook.EnqueueResult{}, nil
	}

	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return webhook.EnqueueResult{}, translate(err, "%s", what)
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, sql, args...)
	if err != nil {
		return webhook.EnqueueResult{}, translate(err, "%s", what)
	}
	if tag.RowsAffected() == 0 {
		return webhook.EnqueueResult{}, conflict()
	}
	res, err := s.enqueueIn(ctx, tx, *p.Enqueue)
	if err != nil {
		return webhook.EnqueueResult{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return webhook.EnqueueResult{}, commitError(err, what)
	}
	return res, nil
}

// jsonText returns b as a string, or nil (NULL) for nil.
func jsonText(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// encodeTriggerState returns the JSON columns of st, its times in UTC
// (nil for a missing detector or schedule). A state that JSON cannot
// hold (a non-finite number) fails with webhook.ErrInvalid.
func encodeTriggerState(st *webhook.TriggerState) (alert, detector, schedule []byte, err error) {
	a := st.Alert
	for _, t := range []*time.Time{&a.StartedAt, &a.FiredAt, &a.ResolvedAt, &a.LastNotifiedAt} {
		*t = t.UTC()
	}
	if alert, err = json.Marshal(a); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: trigger state %s: alert: %v", webhook.ErrInvalid, st.Key, err)
	}
	if st.Detector != nil {
		d := *st.Detector
		d.LastBucket = d.LastBucket.UTC()
		if detector, err = json.Marshal(d); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: trigger state %s: detector: %v", webhook.ErrInvalid, st.Key, err)
		}
	}
	if st.Schedule != nil {
		sc := *st.Schedule
		sc.LastPeriodEnd = sc.LastPeriodEnd.UTC()
		if schedule, err = json.Marshal(sc); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: trigger state %s: schedule: %v", webhook.ErrInvalid, st.Key, err)
		}
	}
	return alert, detector, schedule, nil
}
