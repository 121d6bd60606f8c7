package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the harness's subprocesses, as
// the command's own binary does.
func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(roleMain(role))
	}
	os.Exit(m.Run())
}

// TestQuick runs the whole harness in quick mode against the PostgreSQL
// at WEBHOOK_TEST_DATABASE_URL: every contender, every check, every
// extra. It proves the harness works, not how fast anything is.
func TestQuick(t *testing.T) {
	db := os.Getenv("WEBHOOK_TEST_DATABASE_URL")
	if db == "" {
		t.Skip("WEBHOOK_TEST_DATABASE_URL is not set: the harness needs PostgreSQL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out strings.Builder
	o := options{DB: db, Quick: true, Webhooks: 50, Pad: 860, Concurrency: 32, MaxConns: 16, SampleEvery: 50, Extras: true}
	if err := run(ctx, o, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"raw net/http client loop", "pgstore, 2 worker processes", "River + net/http, 2 processes",
		"pgstore TriggerEvent, 50 matching webhooks", "Trigger → first attempt", "p50 at 10000", "webhook.Sign", "beyond the body", "all checks passed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	t.Log("\n" + out.String())
}
