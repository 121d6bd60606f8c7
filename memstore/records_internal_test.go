package memstore

import (
	"math/rand/v2"
	"testing"
)

func TestCommonTailMatchesAByteByByteCount(t *testing.T) {
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
		if got, want := commonTail(a, b), naive(a, b); got != want {
			t.Fatalf("commonTail(%q, %q) = %d, want %d", a, b, got, want)
		}
	}
}
