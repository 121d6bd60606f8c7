package webhook

// AwaitIndexReload waits until no reload of the matching index runs, so
// that a test ends with no reload in the background.
func (s *Service) AwaitIndexReload() {
	s.reload <- struct{}{}
	<-s.reload
}
