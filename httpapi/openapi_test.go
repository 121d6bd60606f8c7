package httpapi_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook/httpapi"
)

// TestOpenAPIMatchesRoutes fails when a route exists in the handler but
// not in the document, or the other way round.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadDoc(t)
	assert.Equal(t, "3.1.0", doc.OpenAPI)
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	var served []string
	for _, r := range httpapi.Routes() {
		served = append(served, r[0]+" "+r[1])
	}
	assert.ElementsMatch(t, served, documented)
}

// TestOpenAPIErrorResponses checks that each operation documents the
// errors the handler can answer it with.
func TestOpenAPIErrorResponses(t *testing.T) {
	doc := loadDoc(t)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			want := []int{400, 500}
			if path != "/openapi.yaml" {
				want = append(want, 401, 403, 429, 503)
			}
			if strings.Contains(path, "{id}") {
				want = append(want, 404)
			}
			if op.RequestBody != nil {
				want = append(want, 413, 415)
			}
			if method == "PUT" || method == "PATCH" {
				want = append(want, 409, 412, 422)
			}
			for _, status := range want {
				assert.NotNil(t, op.Responses.Status(status), "%s %s documents %d", method, path, status)
			}
			for code, r := range op.Responses.Map() {
				if code[0] == '4' || code[0] == '5' {
					assert.NotNil(t, r.Value.Content.Get("application/problem+json"), "%s %s %s is a problem", method, path, code)
				}
			}
		}
	}
}

// TestOpenAPIValidatorRejects makes sure the validation the other tests
// rely on is real: a webhook response with its secret, or without a
// required field, does not fit.
func TestOpenAPIValidatorRejects(t *testing.T) {
	router := loadRouter(t)
	r := httptest.NewRequest("GET", "/api/webhooks/x", nil)
	route, params, err := router.FindRoute(r)
	require.NoError(t, err)
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route}
	check := func(body string) error {
		return openapi3filter.ValidateResponse(t.Context(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(body))})
	}
	ok := `{"id":"x","name":"n","url":"https://example.com","enabled":true,"triggers":[],"headers":{},"retry":{},"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}`
	require.NoError(t, check(ok))
	assert.Error(t, check(strings.Replace(ok, `"id":"x"`, `"id":"x","secret":"whsec_abc"`, 1)), "a secret does not fit a webhook response")
	assert.Error(t, check(strings.Replace(ok, `"enabled":true,`, ``, 1)))
	for _, trig := range []string{`{"trigger_type":"event","evnts":["x"]}`, `{"trigger_type":"monthly"}`,
		`{"trigger_type":"threshold","conditions":[{"metric":"m","operator":"gt","value":1,"for":60}]}`,
		`{"trigger_type":"anomaly","metric":"m","direction":"up"}`} {
		assert.Error(t, check(strings.Replace(ok, `"triggers":[]`, `"triggers":[`+trig+`]`, 1)), "%s does not fit", trig)
	}
	require.NoError(t, check(strings.Replace(ok, `"triggers":[]`, `"triggers":[{"trigger_type":"scheduled","schedule":"0 9 * * 1","timezone":"UTC"}]`, 1)))
}

func TestServedDocumentIsTheFile(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do(req{method: "GET", path: "/openapi.yaml"})
	file, err := os.ReadFile("openapi.yaml")
	require.NoError(t, err)
	assert.True(t, bytes.Equal(file, r.body), "with the default prefix, the document as written")
}
