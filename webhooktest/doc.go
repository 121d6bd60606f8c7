// Package webhooktest helps you test code that uses the webhook library:
// assert in a unit test that a call would send webhook X with body Y,
// without a network and without waiting for retries. It is modelled on
// River's rivertest, takes testing.TB and depends on nothing but the
// standard library and the webhook package, so it fits any test style.
//
//	clock := webhooktest.NewClock(time.Time{})
//	doer := &webhooktest.Doer{} // answers 200 and records; no network
//	svc, _ := webhook.NewService(memstore.New(nil), &webhook.Config{Now: clock.Now, Doer: doer})
//	// ... create a webhook, run the code under test ...
//	webhooktest.Drain(t, svc, &webhooktest.DrainConfig{Clock: clock}) // send everything, retries included
//	m := webhooktest.RequireDelivered(t, svc, "order.created", func(m *webhooktest.Message) bool {
//		return m.Data["order_id"] == "o_123"
//	})
//
// What it offers:
//
//   - Doer, a webhook.Doer that sends nothing: it records each request
//     (with its body decoded into a Message) and answers 200, or the
//     statuses you script with Respond and Statuses.
//   - Receiver, an httptest.Server that verifies each request's
//     signature with webhook.Verifier and records it, for tests that
//     want the real HTTP path; WaitFor waits for requests to arrive.
//   - Drain, which sends every due delivery synchronously (as
//     Worker.RunOnce does) and, given a Clock, moves the clock to each
//     retry's due time until every delivery is final.
//   - RequireEnqueued, RequireDelivered, RequireNotEnqueued and
//     RequireNotDelivered, which read the Service's Storage.
//   - SignedHeaders and NewSignedRequest, which produce a valid signed
//     request for testing your own receiver's handler.
//
// Stateful triggers (threshold, anomaly, scheduled) notify from
// webhook.Service.Evaluate, which a running Worker calls every
// Config.EvaluationInterval and Drain does not: in a test, move the
// Clock and call svc.Evaluate before asserting (see the example of
// RequireEnqueued).
package webhooktest
