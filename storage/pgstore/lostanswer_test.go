package pgstore_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/internal/faultstore"
)

func TestResultCommittedWithItsAnswerLostRunsTheHooks(t *testing.T) {
	store := newStore(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) }))
	t.Cleanup(srv.Close)
	la := &faultstore.LoseAnswer{Backend: store}
	disabled, failed := make(chan string, 4), make(chan string, 4)
	svc, err := webhook.NewService(la, &webhook.Config{
		Network:           testNetwork(),
		OnWebhookDisabled: func(_ context.Context, w *webhook.Webhook) { disabled <- w.ID },
		OnDeliveryFailed:  func(_ context.Context, d *webhook.Delivery) { failed <- d.ID },
	})
	require.NoError(t, err)
	hook := createHook(t, svc, srv.URL)
	ids, err := svc.TriggerEvent(t.Context(), "e", nil, "")
	require.NoError(t, err)
	w, err := webhook.NewWorker(svc, nil)
	require.NoError(t, err)
	n, err := w.RunOnce(t.Context())
	require.NoError(t, err)
	require.True(t, la.Lost(), "the first write's answer was lost")
	assert.Equal(t, 1, n, "the committed result settles the delivery")
	got, err := svc.Get(t.Context(), hook.ID)
	require.NoError(t, err)
	assert.True(t, got.Disabled, "the 410 disables the webhook")
	require.Len(t, disabled, 1)
	require.Len(t, failed, 1)
	assert.Equal(t, ids[0], <-failed)
}
