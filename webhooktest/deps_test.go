package webhooktest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// webhooktest goes into users' tests, which may use neither testify nor
// PostgreSQL: it builds on the standard library and the webhook package
// alone.
func TestDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the go command is needed to list dependencies: %v", err)
		}
		t.Skipf("the go command is not on PATH: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "github.com/analytics-webhooks/webhook/webhooktest").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/stretchr/", "github.com/jackc/", "github.com/analytics-webhooks/webhook/memstore"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("webhooktest depends on %s", dep)
			}
		}
	}
}
