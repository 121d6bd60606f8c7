package pgstore_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/storage/pgstore"
)

// received is one request a recorder got.
type received struct {
	path   string
	header http.Header
	body   []byte
}

// recorder is a receiver that answers 204 and reports every request.
func recorder(t *testing.T) (*httptest.Server, <-chan received) {
	got := make(chan received, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- received{path: r.URL.Path, header: r.Header.Clone(), body: body}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// drain returns what a recorder got so far. Call it once nothing is in
// flight (after RunOnce returned).
func drain(got <-chan received) []received {
	var out []received
	for {
		select {
		case r := <-got:
			out = append(out, r)
		default:
			return out
		}
	}
}

// sameSchema returns a second store over store's schema, as another
// process would open it.
func sameSchema(t *testing.T, store *pgstore.Store) *pgstore.Store {
	t.Helper()
	other, err := pgstore.New(testPool(t), &pgstore.Config{Schema: store.Schema()})
	require.NoError(t, err)
	return other
}

// longCache returns a service over store whose matching index would stay
// cached for a minute but for notifications.
func longCache(t *testing.T, store webhook.Storage) *webhook.Service {
	t.Helper()
	svc, err := webhook.NewService(store, &webhook.Config{Network: testNetwork(), WebhookCacheTTL: time.Minute})
	require.NoError(t, err)
	return svc
}

func TestWorkerSendsWithTheSettingsOfItsClaim(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, a *webhook.Service, hook *webhook.Webhook)
		check  func(t *testing.T, hook *webhook.Webhook, d *webhook.Delivery, got []received)
	}{
		{
			name: "URL changed",
			change: func(t *testing.T, a *webhook.Service, hook *webhook.Webhook) {
				hook.URL += "new"
				_, err := a.Update(t.Context(), hook)
				require.NoError(t, err)
			},
			check: func(t *testing.T, _ *webhook.Webhook, d *webhook.Delivery, got []received) {
				require.Len(t, got, 1)
				assert.Equal(t, "/new", got[0].path, "sent to the URL of the webhook as claimed")
				assert.Equal(t, webhook.StatusDelivered, d.Status)
			},
		},
		{
			name: "disabled",
			change: func(t *testing.T, a *webhook.Service, hook *webhook.Webhook) {
				hook.Disabled = true
				_, err := a.Update(t.Context(), hook)
				require.NoError(t, err)
			},
			check: func(t *testing.T, _ *webhook.Webhook, d *webhook.Delivery, got []received) {
				assert.Empty(t, got, "nothing is sent to a disabled webhook")
				assert.Equal(t, webhook.StatusFailed, d.Status)
				assert.Contains(t, d.Error, "disabled")
			},
		},
		{
			name: "deleted",
			change: func(t *testing.T, a *webhook.Service, hook *webhook.Webhook) {
				require.NoError(t, a.Delete(t.Context(), hook.ID))
			},
			check: func(t *testing.T, _ *webhook.Webhook, d *webhook.Delivery, got []received) {
				assert.Empty(t, got, "nothing is sent to a deleted webhook")
				assert.Equal(t, webhook.StatusFailed, d.Status)
				assert.Contains(t, d.Error, "deleted")
			},
		},
		{
			name: "secret rotated",
			change: func(t *testing.T, a *webhook.Service, hook *webhook.Webhook) {
				rotated, err := a.RotateSecret(t.Context(), hook.ID)
				require.NoError(t, err)
				*hook = *rotated
			},
			check: func(t *testing.T, hook *webhook.Webhook, d *webhook.Delivery, got []received) {
				require.Len(t, got, 1)
				require.NoError(t, webhook.Verify(hook.Secret, got[0].header, got[0].body), "signed with the new secret")
				assert.Equal(t, webhook.StatusDelivered, d.Status)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			srv, got := recorder(t)
			store := newStore(t)
			// Two processes: A changes the webhook, B's worker sends.
			a := longCache(t, store)
			b := longCache(t, sameSchema(t, store))
			bw, err := webhook.NewWorker(b, nil)
			require.NoError(t, err)
			hook, err := a.Create(ctx, &webhook.Webhook{Name: "r", URL: srv.URL + "/", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
			require.NoError(t, err)

			// B caches the webhook: a trigger call loads B's index, and B's
			// worker sends with it.
			ids, err := b.TriggerEvent(ctx, "e", nil, "")
			require.NoError(t, err)
			require.Len(t, ids, 1)
			n, err := bw.RunOnce(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, n)
			require.Len(t, drain(got), 1)

			// A enqueues, then changes the webhook; B's worker sends next.
			ids, err = a.TriggerEvent(ctx, "e", nil, "")
			require.NoError(t, err)
			require.Len(t, ids, 1)
			tc.change(t, a, hook)
			n, err = bw.RunOnce(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, n)
			d, err := b.Delivery(ctx, ids[0])
			require.NoError(t, err)
			tc.check(t, hook, d, drain(got))
		})
	}
}

// eventually polls cond until it holds, failing after within.
func eventually(t *testing.T, within time.Duration, cond func() bool, msg string) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s within %v", msg, within)
		}
		<-tick.C
	}
	return time.Since(start)
}

func TestMatchingSeesChangesElsewhereWithinASecond(t *testing.T) {
	for _, tc := range []struct {
		name  string
		watch func(ctx context.Context, b *webhook.Service) error
	}{
		{"Service.Watch", func(ctx context.Context, b *webhook.Service) error { return b.Watch(ctx) }},
		{"Worker.Run", func(ctx context.Context, b *webhook.Service) error {
			w, err := webhook.NewWorker(b, nil)
			if err != nil {
				return err
			}
			return w.Run(ctx)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newStore(t)
			srv, _ := sink(t)
			a := longCache(t, store)
			b := longCache(t, sameSchema(t, store))
			ctx, cancel := context.WithCancel(t.Context())
			stopped := make(chan error, 1)
			go func() { stopped <- tc.watch(ctx, b) }()
			defer func() { cancel(); require.NoError(t, <-stopped) }()

			matches := func(want int) func() bool {
				return func() bool {
					ids, err := b.TriggerEvent(t.Context(), "e", nil, "")
					require.NoError(t, err)
					return len(ids) == want
				}
			}
			// B's index is loaded, and cached for a minute.
			require.True(t, matches(0)())
			// The first change may come before B listens; the listener's
			// start drops the index too, so wait for it generously.
			hook := createHook(t, a, srv.URL)
			eventually(t, 20*time.Second, matches(1), "B did not see a webhook created by A")

			hook.Disabled = true
			_, err := a.Update(t.Context(), hook)
			require.NoError(t, err)
			took := eventually(t, time.Second, matches(0), "B still matched a webhook A disabled")
			t.Logf("disable seen after %v", took)

			hook.Disabled = false
			hook.Version = 0
			_, err = a.Update(t.Context(), hook)
			require.NoError(t, err)
			took = eventually(t, time.Second, matches(1), "B did not match a webhook A enabled again")
			t.Logf("enable seen after %v", took)

			require.NoError(t, a.Delete(t.Context(), hook.ID))
			took = eventually(t, time.Second, matches(0), "B still matched a webhook A deleted")
			t.Logf("delete seen after %v", took)
		})
	}
}

func TestWatchStopsWithContext(t *testing.T) {
	b := newService(t, newStore(t))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.Watch(ctx) }()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "Watch returns nil once its context is done")
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after its context was canceled")
	}
}

func TestUnreadableWebhookRowIsSkipped(t *testing.T) {
	ctx := t.Context()
	store := newStore(t)
	a := newService(t, store)
	srv, _ := sink(t)
	first := createHook(t, a, srv.URL)
	bad := createHook(t, a, srv.URL)
	last := createHook(t, a, srv.URL)
	_, err := testPool(t).Exec(ctx, `UPDATE `+store.Schema()+`.webhooks SET config = '{"id": nope' WHERE id = $1`, bad.ID)
	require.NoError(t, err)

	// A process that loads its index now still matches the others.
	b := newService(t, sameSchema(t, store))
	ids, err := b.TriggerEvent(ctx, "e", nil, "")
	require.NoError(t, err, "one unreadable row must not stop trigger calls")
	require.Len(t, ids, 2)
	var to []string
	for _, id := range ids {
		d, err := b.Delivery(ctx, id)
		require.NoError(t, err)
		to = append(to, d.WebhookID)
	}
	assert.ElementsMatch(t, []string{first.ID, last.ID}, to)

	// List returns the readable rows and names the unreadable one.
	ws, err := b.List(ctx, webhook.ListWebhooksParams{})
	require.ErrorIs(t, err, webhook.ErrCorruptWebhook)
	var ce *webhook.CorruptWebhookError
	require.True(t, errors.As(err, &ce))
	assert.Equal(t, bad.ID, ce.ID)
	corrupt := webhook.CorruptWebhooks(err)
	require.Len(t, corrupt, 1)
	require.Len(t, ws, 2)
	assert.Equal(t, first.ID, ws[0].ID)
	assert.Equal(t, last.ID, ws[1].ID)

	// The unreadable row counts towards a page, and paging goes on
	// after it.
	page, err := b.List(ctx, webhook.ListWebhooksParams{Limit: 2})
	require.ErrorIs(t, err, webhook.ErrCorruptWebhook)
	require.Len(t, page, 1)
	page, err = b.List(ctx, webhook.ListWebhooksParams{Limit: 2, After: webhook.CorruptWebhooks(err)[0].ID})
	require.NoError(t, err)
	require.Len(t, page, 1)
	assert.Equal(t, last.ID, page[0].ID)

	_, err = b.Get(ctx, bad.ID)
	require.ErrorIs(t, err, webhook.ErrCorruptWebhook)
}

// watchedStore counts what a watching Service reads, and reports when
// its listener is in place. It swallows the listener's initial "anything
// may have changed", so that every index load it counts has a cause.
type watchedStore struct {
	*pgstore.Store
	lists     atomic.Int32
	gets      chan string // IDs read by GetWebhook, as it returns
	listening chan struct{}
}

func (s *watchedStore) ListWebhooks(ctx context.Context, p webhook.ListWebhooksParams) ([]*webhook.Webhook, error) {
	s.lists.Add(1)
	return s.Store.ListWebhooks(ctx, p)
}

func (s *watchedStore) GetWebhook(ctx context.Context, id string) (*webhook.Webhook, error) {
	w, err := s.Store.GetWebhook(ctx, id)
	s.gets <- id
	return w, err
}

func (s *watchedStore) ListenWebhooks(ctx context.Context, changed func(string)) error {
	var once sync.Once
	return s.Store.ListenWebhooks(ctx, func(id string) {
		if id == "" {
			once.Do(func() { close(s.listening) })
			return
		}
		changed(id)
	})
}

func TestHealthCountersElsewhereDoNotReloadTheIndex(t *testing.T) {
	ctx := t.Context()
	store := newStore(t)
	a := longCache(t, store)
	watched := &watchedStore{Store: sameSchema(t, store), gets: make(chan string, 100), listening: make(chan struct{})}
	b := longCache(t, watched)
	hook := createHook(t, a, "https://example.com/hook")
	ids, err := b.TriggerEvent(ctx, "e", nil, "")
	require.NoError(t, err)
	require.Len(t, ids, 1)
	require.Equal(t, int32(1), watched.lists.Load())

	watchCtx, cancel := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- b.Watch(watchCtx) }()
	defer func() { cancel(); require.NoError(t, <-stopped) }()
	select {
	case <-watched.listening:
	case <-time.After(20 * time.Second):
		t.Fatal("B's watcher did not start listening")
	}
	awaitRead := func(id string) {
		t.Helper()
		select {
		case got := <-watched.gets:
			require.Equal(t, id, got)
		case <-time.After(20 * time.Second):
			t.Fatalf("B's watcher did not read webhook %s", id)
		}
	}
	// settle waits until B's watcher has dealt with every change so far:
	// it reads a new disabled webhook, which cannot matter, only after.
	settle := func() {
		t.Helper()
		w, err := a.Create(ctx, &webhook.Webhook{Name: "barrier", URL: "https://example.com/b", Disabled: true, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
		require.NoError(t, err)
		awaitRead(w.ID)
	}

	// What a worker in A writes when a delivery fails for good.
	w, err := store.GetWebhook(ctx, hook.ID)
	require.NoError(t, err)
	w.ConsecutiveFailures, w.FailingSince, w.UpdatedAt = 1, time.Now().UTC().Truncate(time.Microsecond), time.Now().UTC().Truncate(time.Microsecond)
	require.NoError(t, store.UpdateWebhook(ctx, w))
	awaitRead(hook.ID)
	settle()
	ids, err = b.TriggerEvent(ctx, "e", nil, "")
	require.NoError(t, err)
	require.Len(t, ids, 1)
	assert.Equal(t, int32(1), watched.lists.Load(), "a change of the health counters alone reloaded the index")

	// A change that matters is applied to B's index as read, without
	// reading every webhook again.
	hook.Triggers = []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{"other"}}}
	hook.Version = 0
	_, err = a.Update(ctx, hook)
	require.NoError(t, err)
	awaitRead(hook.ID)
	settle()
	ids, err = b.TriggerEvent(ctx, "e", nil, "")
	require.NoError(t, err)
	assert.Empty(t, ids, "B matched with the webhook's old triggers")
	assert.Equal(t, int32(1), watched.lists.Load(), "a single change reloaded the whole index")
}
