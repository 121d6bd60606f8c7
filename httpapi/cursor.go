package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/analytics-webhooks/webhook"
)

// page is a list response: a page of items and how to get the next.
type page[T any] struct {
	Data []T `json:"data"`
	// NextCursor continues the list; null on the last page.
	NextCursor *string `json:"next_cursor"`
	HasMore    bool    `json:"has_more"`
}

// Cursors are opaque to clients: base64url of a kind tag and the ID to
// continue from, so that a cursor of one list is refused by another.
const (
	cursorWebhooks   = "w1:"
	cursorDeliveries = "d1:"
)

func encodeCursor(kind, id string) *string {
	c := base64.RawURLEncoding.EncodeToString([]byte(kind + id))
	return &c
}

// decodeCursor returns the ID a cursor of the kind continues from, ""
// for no cursor.
func decodeCursor(kind, c string) (string, error) {
	if c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	id, ok := strings.CutPrefix(string(b), kind)
	if err != nil || !ok || id == "" || !printable(id) || len(id) > 256 {
		return "", badRequest("invalid cursor: pass the next_cursor of a previous page of this list", fieldProblem{Parameter: "cursor", Detail: "not a cursor of this list"})
	}
	return id, nil
}

// cursorRefused turns the error of a list read with a cursor into the
// 400 of a bad cursor when the storage refused the cursor itself (a
// cursor decodes to any printable ID, and pgstore refuses one that is
// not a UUID with a bare webhook.ErrInvalid); other errors pass.
func cursorRefused(err error, cursor string) error {
	var ve *webhook.ValidationError
	if err == nil || cursor == "" || !errors.Is(err, webhook.ErrInvalid) || errors.As(err, &ve) {
		return err
	}
	return badRequest("invalid cursor: pass the next_cursor of a previous page of this list", fieldProblem{Parameter: "cursor", Detail: "not a cursor of this list"})
}

// pageLimit parses the limit query parameter: 1 to webhook.MaxPageSize,
// webhook.DefaultPageSize when absent.
func pageLimit(v string) (int, error) {
	if v == "" {
		return webhook.DefaultPageSize, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > webhook.MaxPageSize {
		return 0, &apiError{status: http.StatusBadRequest, detail: "invalid limit",
			errors: []fieldProblem{{Parameter: "limit", Detail: "must be an integer from 1 to " + strconv.Itoa(webhook.MaxPageSize)}}}
	}
	return n, nil
}

// marshalPage encodes a page of items that encode themselves, without
// the second pass encoding/json makes over each item's JSON (a list of
// 1,000 webhooks spends most of its time there).
func marshalPage[T json.Marshaler](items []T, next *string, more bool) ([]byte, error) {
	b := make([]byte, 0, 64+600*len(items))
	b = append(b, `{"data":[`...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		j, err := it.MarshalJSON()
		if err != nil {
			return nil, err
		}
		b = append(b, j...)
	}
	b = append(b, `],"next_cursor":`...)
	if next == nil {
		b = append(b, "null"...)
	} else {
		c, err := json.Marshal(*next)
		if err != nil {
			return nil, err
		}
		b = append(b, c...)
	}
	b = append(b, `,"has_more":`...)
	b = strconv.AppendBool(b, more)
	return append(b, '}'), nil
}
