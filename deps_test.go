package webhook_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestNoPgxOutsidePgstore proves the promise that lets one module hold the
// PostgreSQL backend: a program that imports the root package, memstore,
// httpapi, webhooktest or storagetest builds no pgx code. Only storage/pgstore may import it.
func TestNoPgxOutsidePgstore(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the go command is needed to list dependencies: %v", err)
		}
		t.Skipf("the go command is not on PATH: %v", err)
	}
	pkgs := []string{
		"github.com/analytics-webhooks/webhook",
		"github.com/analytics-webhooks/webhook/memstore",
		"github.com/analytics-webhooks/webhook/httpapi",
		"github.com/analytics-webhooks/webhook/webhooktest",
		"github.com/analytics-webhooks/webhook/storage/storagetest",
		"github.com/analytics-webhooks/webhook/internal/faultstore",
		"github.com/analytics-webhooks/webhook/internal/netaddr",
	}
	for _, pkg := range pkgs {
		out, err := exec.Command(gobin, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/jackc/") {
				t.Errorf("%s depends on %s; only storage/pgstore may import pgx", pkg, dep)
			}
		}
	}
}

// TestNoOpenTelemetrySDKOutsideTests proves that the library depends on
// the OpenTelemetry API only: no package of the module (examples
// included) imports the SDK, which the host chooses and installs. Only
// tests use it.
func TestNoOpenTelemetrySDKOutsideTests(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the go command is needed to list dependencies: %v", err)
		}
		t.Skipf("the go command is not on PATH: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "github.com/analytics-webhooks/webhook/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	api := false
	for _, dep := range strings.Fields(string(out)) {
		if dep == "go.opentelemetry.io/otel/sdk" || strings.HasPrefix(dep, "go.opentelemetry.io/otel/sdk/") {
			t.Errorf("a package of the module depends on %s; only tests may use the OpenTelemetry SDK", dep)
		}
		api = api || dep == "go.opentelemetry.io/otel/metric"
	}
	if !api {
		t.Error("the listing does not show the OpenTelemetry API: the check looks at the wrong packages")
	}
}
