package webhook

import "slices"

// sendPool holds a worker's Concurrency slots for attempts, and the
// deliveries claimed ahead (see WorkerConfig.Prefetch) that wait for
// one. An attempt holds its slot from its start until its result is
// queued for the batch write, or until it ends; the slot then goes to
// the first delivery in line, without waiting for a claim. Guarded by
// Worker.mu.
type sendPool struct {
	free    int        // slots no attempt holds
	waiting []*attempt // deliveries waiting for a slot from head on, in claim order
	head    int        // the first in line; the array is reused once the line empties
}

// enter gives a claimed delivery's attempt a free slot, or puts it in
// line for one. The claiming loop calls it in claim order.
func (w *Worker) enter(a *attempt) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := &w.pool
	if p.free > 0 && p.head == len(p.waiting) {
		p.free--
		a.sl.holds = true
		return
	}
	a.ready = make(chan struct{})
	if p.head > 0 && len(p.waiting) == cap(p.waiting) {
		// Move the line to the front rather than grow the array.
		n := copy(p.waiting, p.waiting[p.head:])
		clear(p.waiting[n:])
		p.waiting, p.head = p.waiting[:n], 0
	}
	p.waiting = append(p.waiting, a)
}

// leave gives s's slot, if it holds one, to the first delivery in line,
// or back to the pool. w.mu is held.
func (w *Worker) leave(s *slot) {
	if !s.holds {
		return
	}
	s.holds = false
	p := &w.pool
	if p.head == len(p.waiting) {
		p.free++
		return
	}
	next := p.waiting[p.head]
	p.waiting[p.head] = nil
	if p.head++; p.head == len(p.waiting) {
		p.waiting, p.head = p.waiting[:0], 0
	}
	next.sl.holds = true
	close(next.ready)
}

// await waits until a has its slot, and reports whether it does. Once
// a.stop is done it reports false: a is out of line and holds no slot,
// and its delivery is to be handed back unattempted.
func (w *Worker) await(a *attempt) bool {
	if a.ready == nil {
		return true
	}
	select {
	case <-a.ready:
		return true
	case <-a.stop.Done():
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	p := &w.pool
	if i := slices.Index(p.waiting[p.head:], a); i >= 0 {
		p.waiting = slices.Delete(p.waiting, p.head+i, p.head+i+1)
		if p.head == len(p.waiting) {
			p.waiting, p.head = p.waiting[:0], 0
		}
	} else {
		w.leave(&a.sl) // given a slot meanwhile: pass it on
	}
	return false
}
