package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/httpapi"
	"github.com/analytics-webhooks/webhook/memstore"
)

// Mount the API in the host's server, behind the host's own
// authentication: here a map from bearer tokens to tenants.
func Example() {
	svc, err := webhook.NewService(memstore.New(nil), nil)
	if err != nil {
		panic(err)
	}
	tokens := map[string]string{"token-of-acme": "acme"}
	api, err := httpapi.New(svc, &httpapi.Config{
		Tenant: func(r *http.Request) (string, error) {
			tenant, ok := tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
			if !ok {
				return "", httpapi.ErrUnauthenticated
			}
			return tenant, nil
		},
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", api)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	send := func(method, path, token, body string) *http.Response {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			panic(err)
		}
		return res
	}

	res := send("POST", "/api/webhooks", "token-of-acme",
		`{"name":"orders","url":"https://crm.example.com/hooks","triggers":[{"trigger_type":"event","events":["purchase"]}]}`)
	var created struct {
		Secret string `json:"secret"`
	}
	_ = json.NewDecoder(res.Body).Decode(&created)
	_ = res.Body.Close()
	fmt.Println(res.Status, strings.HasPrefix(created.Secret, "whsec_"))

	res = send("GET", "/api/webhooks", "token-of-acme", "")
	var list struct {
		Data    []json.RawMessage `json:"data"`
		HasMore bool              `json:"has_more"`
	}
	_ = json.NewDecoder(res.Body).Decode(&list)
	_ = res.Body.Close()
	fmt.Println(res.Status, len(list.Data), list.HasMore)

	res = send("GET", "/api/webhooks", "", "")
	_ = res.Body.Close()
	fmt.Println(res.Status, res.Header.Get("Content-Type"))
	// Output:
	// 201 Created true
	// 200 OK 1 false
	// 401 Unauthorized application/problem+json
}

// A single-tenant host mounts the API under a prefix of its choice and
// puts its own authentication in front of it.
func ExampleConfig_prefix() {
	svc, err := webhook.NewService(memstore.New(nil), nil)
	if err != nil {
		panic(err)
	}
	api, err := httpapi.New(svc, &httpapi.Config{Prefix: "/admin/webhooks-api"})
	if err != nil {
		panic(err)
	}
	requireAdmin := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Admin") != "yes" {
				http.Error(w, "forbidden", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(requireAdmin(api))
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/admin/webhooks-api/event-types", nil)
	req.Header.Set("X-Admin", "yes")
	res, err := srv.Client().Do(req)
	if err != nil {
		panic(err)
	}
	var types struct {
		Data []webhook.EventType `json:"data"`
	}
	_ = json.NewDecoder(res.Body).Decode(&types)
	_ = res.Body.Close()
	fmt.Println(res.Status, types.Data[0].Name, types.Data[1].Name)
	// Output:
	// 200 OK $test $error
}
