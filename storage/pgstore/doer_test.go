package pgstore_test

import "github.com/analytics-webhooks/webhook"

// testNetwork lets tests reach the loopback receivers they start.
func testNetwork() webhook.NetworkPolicy { return webhook.NetworkPolicy{AllowPrivate: true} }
