// Package portal serves a web page where a host's customers manage
// their own webhook endpoints and read every delivery attempt: mount
// its http.Handler in your product, behind your own login, and each
// customer sees only their tenant's endpoints.
//
//	p, err := portal.New(svc, &portal.Config{
//		Prefix: "/portal",
//		Tenant: func(r *http.Request) (string, error) {
//			tenant, ok := tenantOfSession(r) // the host's own login
//			if !ok {
//				return "", httpapi.ErrUnauthenticated
//			}
//			return tenant, nil
//		},
//	})
//	...
//	mux.Handle("/portal/", p)
//
// The pages are rendered on the server with html/template, which
// escapes every value; the style sheet and the one small script (copy
// buttons) are embedded and served under {prefix}/static/, so the
// portal works offline and needs no build step. The pages:
//
//	GET        /                                   the endpoints, with their status
//	GET, POST  /new                                create an endpoint
//	GET        /endpoints/{id}                     one endpoint: settings, health of the last day, actions
//	GET, POST  /endpoints/{id}/edit                change it
//	POST       /endpoints/{id}/enable, /disable    resume or pause deliveries
//	GET, POST  /endpoints/{id}/delete              confirm, then delete
//	POST       /endpoints/{id}/secret              the page with the secret revealed
//	POST       /endpoints/{id}/rotate              a new secret, the old one signing for a grace period
//	POST       /endpoints/{id}/test                send a test event; shows its delivery
//	GET        /endpoints/{id}/deliveries          the history: newest first, by status and event type, paged
//	GET        /endpoints/{id}/deliveries/{did}    one delivery: attempts, answers, the body sent
//	POST       /endpoints/{id}/deliveries/{did}/redeliver
//	GET, POST  /endpoints/{id}/replay              failed deliveries since a time: count, then confirm
//
// Safety: every response carries a strict Content-Security-Policy
// (scripts and styles only from the portal itself, no inline code,
// forms only to the portal, frame-ancestors from Config.FrameAncestors,
// 'none' by default, with X-Frame-Options to match). Forms are
// protected against cross-site request forgery by
// http.CrossOriginProtection: browsers label every request with
// Sec-Fetch-Site (or Origin), and a POST from another origin is refused
// with 403 before any page sees it; requests without either header do
// not come from a browser page and so cannot be forged by one. No token
// is needed, so forms carry no per-user state and keep working in an
// iframe of the host. The secret is shown only in the response to
// the reveal form (a POST: never in a URL or the browser history), and
// never in a log line. Pages are sent with Cache-Control: no-store.
//
// The form edits event, error, funnel and cohort triggers: the event
// types checked become one trigger each (the host's names and patterns
// one event trigger), all with the filters typed. An endpoint whose
// triggers are more than the form can show (several event triggers, or
// triggers with different filters or with conditions, set up through
// the API) shows them without letting them be edited, and saving the
// form keeps them as they are. Threshold, anomaly and scheduled
// triggers need settings the form does not edit: they are shown and
// kept as they are.
//
// With Config.Tenant, every page goes through webhook.Service.Tenant:
// another tenant's endpoint or delivery answers 404, exactly as a
// missing one does.
package portal
