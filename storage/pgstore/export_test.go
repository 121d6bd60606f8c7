package pgstore

// UseCallerClock makes s measure leases with ClaimParams.Now instead of
// the database's clock, so that a suite simulating time (storagetest)
// can expire leases without waiting. Never for stores that several
// machines share.
func (s *Store) UseCallerClock() { s.callerClock = true }
