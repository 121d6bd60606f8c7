package httpapi

import (
	"strconv"
	"strings"
)

// pointer converts the path of a webhook.FieldError ("url",
// "triggers[0].filters[1].value", `headers["X-Team"]`, "(input)") to an
// RFC 6901 JSON Pointer ("/url", "/triggers/0/filters/1/value",
// "/headers/X-Team", "" for the whole body).
func pointer(field string) string {
	if field == "" || field == "(input)" {
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(field); {
		switch field[i] {
		case '.':
			i++
		case '[':
			rest := field[i+1:]
			if strings.HasPrefix(rest, `"`) {
				q, err := strconv.QuotedPrefix(rest)
				if err == nil {
					key, err := strconv.Unquote(q)
					if err == nil {
						segment(&b, key)
						i += 1 + len(q)
						if i < len(field) && field[i] == ']' {
							i++
						}
						continue
					}
				}
			}
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				segment(&b, rest)
				return b.String()
			}
			segment(&b, rest[:end])
			i += end + 2
		default:
			end := strings.IndexAny(field[i:], ".[")
			if end < 0 {
				segment(&b, field[i:])
				return b.String()
			}
			segment(&b, field[i:i+end])
			i += end
		}
	}
	return b.String()
}

// segment appends one reference token, escaped.
func segment(b *strings.Builder, token string) {
	b.WriteByte('/')
	b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(token))
}

// keyPointer returns the JSON Pointer of a top-level key.
func keyPointer(key string) string {
	var b strings.Builder
	segment(&b, key)
	return b.String()
}
