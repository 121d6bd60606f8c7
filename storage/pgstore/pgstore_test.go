package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/storage/pgstore"
	"github.com/analytics-webhooks/webhook/storage/storagetest"
)

// urlEnv names the environment variable with the test database's URL.
const urlEnv = "WEBHOOK_TEST_DATABASE_URL"

var (
	poolOnce sync.Once
	pool     *pgxpool.Pool
	poolErr  error
)

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv(urlEnv) == "" {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "pgstore: %s is not set, and CI needs PostgreSQL: run .ci/run, which starts it\n", urlEnv)
			os.Exit(1)
		}
		// go test hides a passing package's output unless -v is given,
		// so say it twice: this line (with -v), and by running no tests
		// at all, which makes go test print "[no tests to run]" after
		// the package's name.
		fmt.Fprintf(os.Stderr, "pgstore: the PostgreSQL tests were skipped: %s is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)\n", urlEnv)
		if err := flag.Set("test.run", "^$"); err != nil {
			fmt.Fprintln(os.Stderr, "pgstore:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if pool != nil {
		pool.Close()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// testPool returns the shared pool, skipping the test when no database is
// configured (and failing under CI, where one must be).
func testPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := os.Getenv(urlEnv)
	if url == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set, and CI needs PostgreSQL: run .ci/run, which starts it", urlEnv)
		}
		t.Skipf("set %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests", urlEnv)
	}
	poolOnce.Do(func() {
		pool, poolErr = pgxpool.New(context.Background(), url)
		if poolErr == nil {
			poolErr = pool.Ping(context.Background())
		}
	})
	if poolErr != nil {
		t.Fatalf("connecting to %s: %v", urlEnv, poolErr)
	}
	return pool
}

// newStore returns a migrated store in a schema of its own, dropped when
// the test ends.
func newStore(t testing.TB) *pgstore.Store {
	t.Helper()
	p := testPool(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	s, err := pgstore.New(p, &pgstore.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := p.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	// The suite simulates time, leases included: measure leases with the
	// callers' clock here (freshness_test.go covers the database's).
	storagetest.Run(t, func(t *testing.T) webhook.Storage {
		s := newStore(t)
		s.UseCallerClock()
		return s
	})
}
