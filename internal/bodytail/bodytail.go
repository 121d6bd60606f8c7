// Package bodytail finds the tail that the request bodies of one trigger
// call share: every webhook's body of an event is the same but for the
// payload and webhook IDs at its start, so storing the common tail once
// stores the event's data once, however many webhooks it fans out to.
package bodytail

import "bytes"

// MinShared is the shortest common tail worth storing once.
const MinShared = 64

// Common returns how many bytes a and b end with in common.
func Common(a, b []byte) int {
	// Compare in blocks first (bytes.Equal is vectorised), then byte by
	// byte within the first block that differs.
	const block = 64
	n := 0
	for n+block <= min(len(a), len(b)) && bytes.Equal(a[len(a)-n-block:len(a)-n], b[len(b)-n-block:len(b)-n]) {
		n += block
	}
	for n < len(a) && n < len(b) && a[len(a)-1-n] == b[len(b)-1-n] {
		n++
	}
	return n
}

// Shared returns the length of the tail that every body of bodies with a
// common tail of at least MinShared bytes with the first one ends with
// (the shortest of those tails), and which bodies share it (the first
// always does when any other does). With fewer than two bodies sharing,
// it returns 0 and nil.
func Shared(bodies [][]byte) (int, []bool) {
	if len(bodies) < 2 {
		return 0, nil
	}
	first := bodies[0]
	n, sharing := len(first), 0
	uses := make([]bool, len(bodies))
	for i, b := range bodies[1:] {
		if c := Common(first, b); c >= MinShared {
			n = min(n, c)
			uses[i+1] = true
			sharing++
		}
	}
	if sharing == 0 {
		return 0, nil
	}
	uses[0] = true
	return n, uses
}
