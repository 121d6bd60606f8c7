package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"slices"

	"github.com/analytics-webhooks/webhook"
)

// patchWebhook serves PATCH: a JSON Merge Patch (RFC 7396) applied to
// the webhook's JSON form (as GET returns it). Members set to null are
// removed, which for a field means its default ("headers": null removes
// every header), except "enabled": null, which leaves the enabled state
// as it is. The rules for read-only fields, secrets and "version" are
// those of PUT.
func (h *Handler) patchWebhook(rq *request) error {
	id := rq.r.PathValue("id")
	if _, err := query(rq.r, nil); err != nil {
		return err
	}
	match, err := parseIfMatch(rq.r)
	if err != nil {
		return err
	}
	b, err := h.body(rq, true, typeMergePatch, typeJSON)
	if err != nil {
		return err
	}
	patch, err := decodeAny(b)
	if err != nil {
		return badRequest("malformed JSON: " + err.Error())
	}
	obj, ok := patch.(map[string]any)
	if !ok {
		return badRequest("the merge patch must be a JSON object", fieldProblem{Pointer: ptr(""), Detail: "must be a JSON object"})
	}
	// A member set to null removes nothing when it names no field, and
	// would pass unnoticed: decoding it alone tells (null counts as
	// absent, but an unknown key is refused). Others are checked when
	// the merged webhook is decoded.
	var unknown []fieldProblem
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		probe, err := json.Marshal(map[string]any{k: nil})
		if obj[k] == nil && (err != nil || json.Unmarshal(probe, &webhook.Webhook{}) != nil) {
			unknown = append(unknown, fieldProblem{Pointer: ptr(keyPointer(k)), Detail: "unknown field"})
		}
	}
	if len(unknown) > 0 {
		return badRequest("the request body does not fit the API: unknown fields, wrong types or malformed JSON", unknown...)
	}
	keys := map[string]bool{}
	for k, v := range obj {
		keys[k] = v != nil
	}
	var fixed webhook.Webhook
	if err := fixedFields(obj, &fixed); err != nil {
		return err
	}
	if err := checkFixed(keys, &fixed, id); err != nil {
		return err
	}
	return h.update(rq, id, match, bodyVersion(keys, fixed.Version), func(cur *webhook.Webhook) (*webhook.Webhook, error) {
		doc, err := json.Marshal(cur)
		if err != nil {
			return nil, err
		}
		target, err := decodeAny(doc)
		if err != nil {
			return nil, err
		}
		merged, err := json.Marshal(mergePatch(target, patch))
		if err != nil {
			return nil, err
		}
		var w webhook.Webhook
		if err := json.Unmarshal(merged, &w); err != nil {
			return nil, decodeError(err)
		}
		if !presentKeys(merged)["enabled"] {
			w.Disabled, w.DisabledReason = cur.Disabled, cur.DisabledReason
		}
		return &w, nil
	})
}

// fixedFields decodes the patch's "id" and "version", which PATCH
// checks before merging.
func fixedFields(obj map[string]any, dst *webhook.Webhook) error {
	sub := map[string]any{}
	for _, k := range []string{"id", "version"} {
		if v, ok := obj[k]; ok && v != nil {
			sub[k] = v
		}
	}
	b, err := json.Marshal(sub)
	if err == nil {
		err = json.Unmarshal(b, dst)
	}
	var ve *webhook.ValidationError
	if errors.As(err, &ve) {
		return decodeError(err)
	}
	return err
}

// decodeAny decodes JSON keeping numbers exact.
func decodeAny(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// mergePatch applies patch to target as RFC 7396 says: an object patch
// merges member by member, null removes, anything else replaces.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}
