package webhook

import "slices"

// notify wakes workers waiting for new deliveries.
func (s *Service) notify() {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	for _, ch := range s.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// subscribe returns a channel that receives a value (coalesced) whenever
// deliveries are enqueued through this service, and a function that
// stops the subscription.
func (s *Service) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.notifyMu.Lock()
	s.waiters = append(s.waiters, ch)
	s.notifyMu.Unlock()
	return ch, func() {
		s.notifyMu.Lock()
		defer s.notifyMu.Unlock()
		s.waiters = slices.DeleteFunc(s.waiters, func(c chan struct{}) bool { return c == ch })
	}
}
