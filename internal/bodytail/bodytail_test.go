package bodytail

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestShared(t *testing.T) {
	data := `,"event_type":"e","data":{"k":"` + strings.Repeat("v", 100) + `"}}`
	a := []byte(`{"id":"1","webhook_id":"a"` + data)
	b := []byte(`{"id":"2","webhook_id":"b"` + data)
	c := []byte(`{"id":"3","webhook_id":"c","other":true}`)
	d := []byte(`{"id":"4","webhook_id":"dd"` + data[10:])
	n, uses := Shared([][]byte{a, b, c, d})
	if want := Common(a, d); n != want || want >= Common(a, b) {
		t.Fatalf("shared %d bytes, want the shorter common tail, %d (a and b share %d)", n, want, Common(a, b))
	}
	if !uses[0] || !uses[1] || uses[2] || !uses[3] {
		t.Fatalf("uses %v", uses)
	}
	for i, body := range [][]byte{a, b, d} {
		if !bytes.Equal(body[len(body)-n:], a[len(a)-n:]) {
			t.Errorf("body %d does not end with the shared tail", i)
		}
	}
	if n, uses := Shared([][]byte{a, c}); n != 0 || uses != nil {
		t.Errorf("nothing in common: %d %v", n, uses)
	}
	if n, uses := Shared([][]byte{a}); n != 0 || uses != nil {
		t.Errorf("one body: %d %v", n, uses)
	}
}

func FuzzShared(f *testing.F) {
	f.Add([]byte("abc"), []byte("xbc"), []byte("c"))
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		bodies := [][]byte{a, b, c}
		n, uses := Shared(bodies)
		if n < 0 {
			t.Fatal("negative")
		}
		for i, u := range uses {
			if !u {
				continue
			}
			if n > len(bodies[i]) || !bytes.Equal(bodies[i][len(bodies[i])-n:], a[len(a)-n:]) {
				t.Fatalf("body %d does not end with the %d shared bytes", i, n)
			}
		}
		if n > 0 && n < MinShared {
			t.Fatalf("shared %d < MinShared", n)
		}
	})
}

func TestCommonMatchesAByteByByteCount(t *testing.T) {
	naive := func(a, b []byte) int {
		n := 0
		for n < len(a) && n < len(b) && a[len(a)-1-n] == b[len(b)-1-n] {
			n++
		}
		return n
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		tail := make([]byte, r.IntN(300))
		for i := range tail {
			tail[i] = byte('a' + r.IntN(3))
		}
		a := append(make([]byte, r.IntN(80)), tail...)
		b := append(make([]byte, r.IntN(80)), tail...)
		for i := range a[:len(a)-len(tail)] {
			a[i] = byte('a' + r.IntN(3))
		}
		for i := range b[:len(b)-len(tail)] {
			b[i] = byte('a' + r.IntN(3))
		}
		if got, want := Common(a, b), naive(a, b); got != want {
			t.Fatalf("Common(%q, %q) = %d, want %d", a, b, got, want)
		}
	}
}
