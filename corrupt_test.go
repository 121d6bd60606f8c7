package webhook_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// unreadable is a Storage in which some webhooks cannot be read back:
// ListWebhooks reports them as the contract says.
type unreadable struct {
	*memstore.Store
	ids []string
}

func (s *unreadable) ListWebhooks(ctx context.Context, p webhook.ListWebhooksParams) ([]*webhook.Webhook, error) {
	ws, err := s.Store.ListWebhooks(ctx, p)
	if err != nil {
		return nil, err
	}
	var good []*webhook.Webhook
	var bad []error
	for _, w := range ws {
		if slices.Contains(s.ids, w.ID) {
			bad = append(bad, &webhook.CorruptWebhookError{ID: w.ID, Err: errors.New("invalid JSON")})
			continue
		}
		good = append(good, w)
	}
	return good, errors.Join(bad...)
}

func TestIndexPagesPastAnUnreadableRow(t *testing.T) {
	ctx := t.Context()
	store := &unreadable{Store: memstore.New(nil)}
	svc, err := webhook.NewService(store, nil)
	require.NoError(t, err)
	var ids []string
	for i := range webhook.MaxPageSize + 1 {
		event := "other"
		if i == webhook.MaxPageSize {
			event = "target"
		}
		w, err := svc.Create(ctx, &webhook.Webhook{Name: "h", URL: "https://example.com/h", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{event}}}})
		require.NoError(t, err)
		ids = append(ids, w.ID)
	}
	// The last row of the first page cannot be read: the page is short
	// of readable rows, yet not the last.
	store.ids = []string{ids[webhook.MaxPageSize-1]}

	got, err := svc.TriggerEvent(ctx, "target", nil, "")
	require.NoError(t, err)
	require.Len(t, got, 1, "the webhook after the unreadable row's page is matched")
	got, err = svc.TriggerEvent(ctx, "other", nil, "")
	require.NoError(t, err)
	require.Len(t, got, webhook.MaxPageSize-1, "every readable webhook matches")
}

func TestCorruptWebhooks(t *testing.T) {
	a := &webhook.CorruptWebhookError{ID: "a", Err: errors.New("x")}
	b := &webhook.CorruptWebhookError{ID: "b", Err: errors.New("y")}
	err := errors.Join(a, errors.Join(b))
	require.ErrorIs(t, err, webhook.ErrCorruptWebhook)
	require.Equal(t, []*webhook.CorruptWebhookError{a, b}, webhook.CorruptWebhooks(err))
	require.Empty(t, webhook.CorruptWebhooks(nil))
	require.Empty(t, webhook.CorruptWebhooks(errors.New("other")))
	require.NotErrorIs(t, errors.New("other"), webhook.ErrCorruptWebhook)
}
