package pgstore_test

import "github.com/analytics-webhooks/webhook"

// testDoer is the client tests send with: the library's own, which may
// reach the loopback receivers tests start.
func testDoer() webhook.Doer { return webhook.NewHTTPClient() }
