// Package httpapi serves the webhook library's REST API as an
// http.Handler, for hosts that let their customers manage their own
// webhooks: mount it in your server, behind your own authentication.
//
//	api, err := httpapi.New(svc, &httpapi.Config{
//		Tenant: func(r *http.Request) (string, error) {
//			tenant, ok := tenantOfToken(r.Header.Get("Authorization"))
//			if !ok {
//				return "", httpapi.ErrUnauthenticated
//			}
//			return tenant, nil
//		},
//	})
//	...
//	mux.Handle("/api/", api)
//
// The routes, under Config.Prefix (default "/api"), are those of the
// specification and more; openapi.yaml, served at GET /api/openapi.yaml,
// describes each with its parameters, bodies and errors:
//
//	GET, POST      /webhooks                       list (cursor page), create (201, the secret shown once)
//	GET, PUT       /webhooks/{id}                  read, replace
//	PATCH, DELETE  /webhooks/{id}                  merge-patch (RFC 7396), delete
//	POST           /webhooks/{id}/test             send a "$test" delivery now and return it
//	GET            /webhooks/{id}/stats            outcomes, success rate, latency, health; since (default 24 h ago)
//	GET            /webhooks/{id}/deliveries       the history: cursor page; status, event_type, since, until
//	GET            /webhooks/{id}/deliveries/{delivery_id}            one delivery, its attempts, the body sent
//	POST           /webhooks/{id}/deliveries/{delivery_id}/redeliver  queue it again (202)
//	POST           /webhooks/{id}/replay           queue failed deliveries again; dry_run counts them
//	POST           /webhooks/{id}/enable           resume
//	POST           /webhooks/{id}/disable          pause, with a reason
//	GET            /webhooks/{id}/secret           the secret
//	POST           /webhooks/{id}/secret/rotate    a new secret; the old one signs for a grace period
//	GET            /event-types                    the events webhooks can hear, with JSON Schemas
//	GET            /openapi.yaml                   the OpenAPI 3.1 document (no tenant needed)
//
// Bodies are JSON in the specification's field names (see
// webhook.Webhook), decoded strictly: an unknown field, a field in the
// wrong case or of the wrong type is a 400 that names it. Secrets appear
// only in the responses of create, of the secret endpoint and of
// rotation, never in other responses nor in logs. Errors are RFC 9457
// application/problem+json, with "errors": [{"pointer", "detail"}] for
// the fields at fault: 400 for a body or query the API cannot read
// (malformed JSON, unknown fields, wrong types, bad parameters), 404 for
// a missing webhook or delivery, 405 with Allow, 409 and 412 for
// version conflicts, 413 above Config.MaxBodyBytes, 415 for a body that
// is not JSON, 422 for a webhook the library refuses (pointers such as
// "/triggers/0/conditions/0/for_seconds"), 401, 403 and 429 as the
// host's Config.Tenant and Config.RateLimit say, 503 when the delivery
// queue is full, and 500 only for server faults.
//
// Stats: GET /webhooks/{id}/stats serves webhook.TenantService.Stats
// (webhook.WebhookStats in JSON). The whole queue's state
// (webhook.Service.QueueStats) is not served: it spans every tenant and
// is the operator's, not a tenant's; serve it, if you want it over
// HTTP, from an endpoint of your own operators' API.
//
// With Config.Tenant, every request is scoped to the tenant it returns
// (webhook.Service.Tenant): another tenant's webhook or delivery answers
// 404, exactly as a missing one does.
//
// Updates: PUT replaces the configuration; omitted fields take their
// defaults, except "enabled", which stays as it is unless given. PATCH
// is a JSON Merge Patch of the webhook's JSON form. Both are
// conditional when the request carries If-Match with the webhook's ETag
// (412 when it changed) or the body a "version" (409). Create takes an
// optional Idempotency-Key header: the same key with the same body
// returns the webhook created first (201, Idempotent-Replayed: true);
// with another body, 422.
package httpapi
