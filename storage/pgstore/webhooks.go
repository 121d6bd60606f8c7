package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/analytics-webhooks/webhook"
	"github.com/jackc/pgx/v5"
)

// encodeWebhook returns the stored form of w: its JSON with the secrets.
func encodeWebhook(w *webhook.Webhook) (string, error) {
	b, err := json.Marshal(w.WithSecrets())
	if err != nil {
		return "", fmt.Errorf("%w: webhook %s: %v", webhook.ErrInvalid, w.ID, err)
	}
	return string(b), nil
}

// decodeWebhook decodes a stored webhook with the library's strict
// decoder: a row with an unknown field, say from a newer version, is an
// error naming the row rather than a webhook with settings dropped.
func decodeWebhook(config string) (*webhook.Webhook, error) {
	var w webhook.WebhookWithSecrets
	if err := json.Unmarshal([]byte(config), &w); err != nil {
		var row struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal([]byte(config), &row) // best effort, to name the row
		return nil, fmt.Errorf("pgstore: stored webhook %q cannot be decoded: %w", row.ID, err)
	}
	return &w.Webhook, nil
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
	if err := ctx.Err(); err != nil {
		return err // nothing was sent
	}
	_, err = s.pool.Exec(ctx, s.sql.createWebhook, w.ID, w.TenantID, !w.Disabled, config, w.CreatedAt, w.UpdatedAt, w.Version, s.webhookChannel())
	if err != nil {
		// One statement that commits on its own: a connection lost
		// after it was sent leaves the outcome unknown.
		return commitError(err, fmt.Sprintf("webhook %s", w.ID))
	}
	return nil
}

// GetWebhook implements webhook.Storage.
func (s *Store) GetWebhook(ctx context.Context, id string) (*webhook.Webhook, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validID(id) {
		return nil, fmt.Errorf("webhook %s: %w", id, webhook.ErrNotFound)
	}
	var tenant, config string
	if err := s.pool.QueryRow(ctx, s.sql.getWebhook, id).Scan(&tenant, &config); err != nil {
		return nil, translate(err, "webhook %s", id)
	}
	w, err := decodeWebhook(config)
	if err != nil {
		return nil, &webhook.CorruptWebhookError{ID: id, TenantID: tenant, Err: err}
	}
	return w, nil
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
	if err := ctx.Err(); err != nil {
		return err // nothing was sent
	}
	tag, err := q.Exec(ctx, s.sql.updateWebhook, w.ID, w.TenantID, !w.Disabled, config, w.UpdatedAt, w.Version, s.webhookChannel())
	if err != nil {
		return commitError(err, fmt.Sprintf("webhook %s", w.ID))
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
	if err := ctx.Err(); err != nil {
		return err // nothing was sent
	}
	tag, err := s.pool.Exec(ctx, s.sql.deleteWebhook, id, s.webhookChannel())
	if err != nil {
		return commitError(err, fmt.Sprintf("webhook %s", id))
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

// listWebhooksQuery returns the statement and arguments of a page of
// webhooks after the cursor: of every tenant, or of tenant if not empty.
func (s *Store) listWebhooksQuery(tenant, after string, limit int) (string, []any) {
	if tenant == "" {
		return s.sql.listWebhooks, []any{after, limit}
	}
	return s.sql.listTenantWebhooks, []any{after, limit, tenant}
}

// ListWebhooks implements webhook.Storage. A row that does not decode is
// left out and reported as a *webhook.CorruptWebhookError (with its
// tenant) in the error returned with the rows that do.
func (s *Store) ListWebhooks(ctx context.Context, p webhook.ListWebhooksParams) ([]*webhook.Webhook, error) {
	after := p.After
	if after == "" {
		after = minUUID
	} else if !validID(after) {
		return nil, fmt.Errorf("%w: cursor %q is not a webhook ID", webhook.ErrInvalid, p.After)
	}
	sql, args := s.listWebhooksQuery(p.TenantID, after, webhook.PageLimit(p.Limit))
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, translate(err, "list webhooks")
	}
	type row struct{ id, tenant, config string }
	stored, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.id, &x.tenant, &x.config)
	})
	if err != nil {
		return nil, translate(err, "list webhooks")
	}
	out := make([]*webhook.Webhook, 0, len(stored))
	var corrupt []error
	for _, r := range stored {
		w, err := decodeWebhook(r.config)
		if err != nil {
			corrupt = append(corrupt, &webhook.CorruptWebhookError{ID: r.id, TenantID: r.tenant, Err: err})
			continue
		}
		out = append(out, w)
	}
	return out, errors.Join(corrupt...)
}
