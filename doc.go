// Package webhook delivers analytics webhooks from inside your own
// process: you register endpoints, call the trigger methods from your
// code, and run a Worker that POSTs signed JSON to each endpoint, retries
// with backoff and keeps a delivery history.
//
// The flow from a webhook to a delivered, signed request:
//
//	store := memstore.New(nil) // or pgstore.New(pool, nil) to share PostgreSQL
//	svc, err := webhook.NewService(store, nil)
//	...
//	hook, err := svc.Create(ctx, &webhook.Webhook{
//		Name:     "orders",
//		URL:      "https://crm.example.com/hooks",
//		Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{"purchase"}}},
//	})
//	// hook.Secret ("whsec_…") goes to the receiver, which checks requests
//	// with webhook.Verify or Verifier.Middleware.
//
//	ids, err := svc.TriggerEvent(ctx, "purchase", map[string]any{"amount": 42}, "production")
//	// The deliveries are stored: nothing is lost once this returns.
//
// A Worker (see the package's Worker type) claims due deliveries with a
// lease, sends each as a Standard Webhooks request (headers webhook-id,
// webhook-timestamp, webhook-signature), records every attempt, and
// schedules retries under the webhook's RetryPolicy.
//
// # Matching
//
// A webhook's triggers are OR-ed. Event, error, funnel_complete and
// cohort_entry triggers match each trigger call of their type whose data
// satisfies all of their filters; an event trigger also needs the event
// name to fit one of its patterns ("purchase", "*", "checkout.*"; none
// means all). Anomaly triggers match TriggerAnomaly calls (anomalies the
// host detected itself) by metric, side (see Anomaly.Direction) and
// filters. Threshold and scheduled triggers match no call: they are
// stateful (TriggerType.Stateful), and so is an anomaly trigger's own
// detector. Each threshold condition and anomaly detector is an alert
// with state in Storage, fed by RecordMetric (threshold conditions also
// by TriggerThreshold) and evaluated by Service.Evaluate, that notifies
// once when it fires and once when it resolves (see Condition); a
// scheduled trigger sends one summary per period (see Config.Summary).
// MatchEventName, MatchFilters, Filter.Match, Condition.Match and
// Trigger.Match expose the rules so you can test them; they see event
// data as the Service does, as the JSON it encodes to.
//
// # Tenants
//
// A multi-tenant host gives each webhook a TenantID and raises events
// with WithTenant(id): an event for one tenant never reaches another's
// webhooks, and an event without a tenant reaches only webhooks without
// one. Config.RequireTenant makes the tenant mandatory. Service.Tenant(id)
// returns a TenantService whose methods (Get, Update, Test, Redeliver, …)
// see only that tenant's webhooks and deliveries and report any other ID
// as ErrNotFound, so handlers never check TenantID by hand.
//
// # Safety
//
// Customers choose the URLs the library connects to. The default client
// (NewHTTPClient) refuses loopback, private, link-local (cloud metadata
// included) and other special-purpose addresses, checked on the resolved
// address at connect time; it follows no redirects and uses no proxy.
// Config.Network allows internal networks or hosts explicitly. Workers
// cap the attempts in flight per webhook and per destination host and
// honour per-webhook rate limits, so one slow endpoint (or many on one
// slow host) cannot take the pool, and endpoints that
// keep failing are disabled (Config.DisableAfterFailures).
//
// # Errors
//
// Bad input is reported with a *ValidationError that lists every field at
// fault and satisfies errors.Is(err, ErrInvalid). Missing rows are
// ErrNotFound, clashing IDs ErrDuplicate. Storage backends translate
// their own errors into these.
//
// # Storage
//
// Storage is the one interface a backend implements; memstore keeps
// everything in memory, storage/pgstore in PostgreSQL, and
// storage/storagetest is the conformance suite both pass. The backend
// contract is everything in storage.go and history.go: Storage, its
// parameter and result structs (EnqueueParams, ClaimParams, Claim,
// RecordAttemptParams, ListDeliveriesParams, …) and the optional
// interfaces a backend may add (Enqueuer, Notifier, BatchRecorder,
// Pruner, HistoryReader). Applications need none of it beyond choosing a
// backend.
//
// # Configuration
//
// Every configuration struct follows one rule: a nil pointer or a zero
// field takes the default; a field that can be turned off says so, and a
// negative value turns it off; any other negative value is refused with
// an error wrapping ErrInvalid.
package webhook
