package memstore

import (
	"container/heap"
	"strings"

	"github.com/analytics-webhooks/webhook"
)

// The unfinished deliveries wait in one queue per webhook, a min-heap by
// due time (then ID), and the queues in a heap by their first delivery,
// so that a claim takes the k earliest due deliveries in O(k log n),
// skips an excluded or capped webhook without reading its backlog, and
// nothing is ever sorted whole.
//
// A delivery is due at NextAttemptAt while pending or retrying, and at
// its lease's end while delivering: an expired lease is claimable again
// at the time it expired, in the same order as the rest.

// queue is one webhook's unfinished deliveries.
type queue struct {
	webhookID string
	h         dueHeap
	pos       int // index in Store.top
	// During a claim (takeDueLocked) only: how many it took, and whether
	// the claim excludes the webhook.
	taken    int
	excluded bool
	// During a claim that names the webhook in MaxByWebhook: its cap.
	capped bool
	max    int
}

// due is when d can be claimed, in microseconds.
func (d *delivery) due() int64 {
	if d.lease != nil && d.status() == webhook.StatusDelivering {
		return micros(d.lease.ExpiresAt)
	}
	return d.next
}

// before orders deliveries by due time, then ID.
func before(a, b *delivery) bool {
	if x, y := a.due(), b.due(); x != y {
		return x < y
	}
	return strings.Compare(a.id, b.id) < 0
}

// dueHeap is a min-heap of deliveries by due time; each knows its index.
type dueHeap []*delivery

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return before(h[i], h[j]) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = int32(i), int32(j)
}
func (h *dueHeap) Push(x any) {
	d := x.(*delivery)
	d.pos = int32(len(*h))
	*h = append(*h, d)
}
func (h *dueHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	d.pos = -1
	return d
}

// topHeap is a min-heap of non-empty queues by their first delivery.
type topHeap []*queue

func (h topHeap) Len() int           { return len(h) }
func (h topHeap) Less(i, j int) bool { return before(h[i].h[0], h[j].h[0]) }
func (h topHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}
func (h *topHeap) Push(x any) {
	q := x.(*queue)
	q.pos = len(*h)
	*h = append(*h, q)
}
func (h *topHeap) Pop() any {
	old := *h
	q := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	q.pos = -1
	return q
}

// queueLocked adds the unfinished delivery d to its webhook's queue.
func (s *Store) queueLocked(d *delivery) {
	q := s.queues[d.webhookID]
	if q == nil {
		q = &queue{webhookID: d.webhookID, pos: -1}
		s.queues[d.webhookID] = q
	}
	d.q = q
	heap.Push(&q.h, d)
	if q.pos < 0 {
		heap.Push(&s.top, q)
	} else {
		heap.Fix(&s.top, q.pos)
	}
	s.unfinished++
	s.activeBytes += d.charge()
}

// requeueLocked restores the heaps' order after d's due time changed.
func (s *Store) requeueLocked(d *delivery) {
	heap.Fix(&d.q.h, int(d.pos))
	heap.Fix(&s.top, d.q.pos)
}

// dequeueLocked removes d, now final, from its queue.
func (s *Store) dequeueLocked(d *delivery) {
	q := d.q
	heap.Remove(&q.h, int(d.pos))
	d.q = nil
	if len(q.h) == 0 {
		heap.Remove(&s.top, q.pos)
		delete(s.queues, q.webhookID)
	} else {
		heap.Fix(&s.top, q.pos)
	}
	s.unfinished--
	s.activeBytes -= d.charge()
}

// takeDueLocked takes up to p.Limit due deliveries out of their queues,
// in due order, as p.ExcludeWebhooks, p.MaxPerWebhook and
// p.MaxByWebhook allow. The
// caller may change the taken deliveries' due times, and then must put
// them back with restoreLocked, giving it aside, the queues set aside
// from the top heap meanwhile.
func (s *Store) takeDueLocked(p webhook.ClaimParams) (taken []*delivery, aside []*queue) {
	for _, id := range p.ExcludeWebhooks {
		if q := s.queues[id]; q != nil {
			q.excluded = true
		}
	}
	for id, n := range p.MaxByWebhook {
		if q := s.queues[id]; q != nil {
			q.capped = true
			q.max = n
			q.excluded = q.excluded || n < 1
		}
	}
	// Taken deliveries leave their queues for the time of the claim, so
	// that the next due one comes up.
	for len(taken) < p.Limit && len(s.top) > 0 {
		q := s.top[0]
		d := q.h[0]
		if d.due() > micros(p.Now) {
			break
		}
		if q.excluded {
			aside = append(aside, heap.Pop(&s.top).(*queue))
			continue
		}
		heap.Pop(&q.h)
		taken = append(taken, d)
		q.taken++
		limit := p.MaxPerWebhook
		if q.capped {
			limit = q.max
		}
		if len(q.h) == 0 || (limit > 0 && q.taken >= limit) {
			aside = append(aside, heap.Pop(&s.top).(*queue))
		} else {
			heap.Fix(&s.top, 0)
		}
	}
	for _, id := range p.ExcludeWebhooks {
		if q := s.queues[id]; q != nil {
			q.excluded = false
		}
	}
	for id := range p.MaxByWebhook {
		if q := s.queues[id]; q != nil {
			q.excluded, q.capped = false, false
		}
	}
	return taken, aside
}

// restoreLocked puts back what takeDueLocked took, each delivery by its
// due time now.
func (s *Store) restoreLocked(taken []*delivery, aside []*queue) {
	// One change at a time, each repaired at once: a heap is repaired
	// only when it has one element out of place.
	for _, d := range taken {
		d.q.taken = 0
		heap.Push(&d.q.h, d)
		if d.q.pos >= 0 {
			heap.Fix(&s.top, d.q.pos)
		}
	}
	for _, q := range aside {
		heap.Push(&s.top, q)
	}
}
