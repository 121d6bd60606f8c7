// Package faultstore wraps a webhook Storage to make it fail the way a
// database does under trouble: a claim whose answer is lost to a
// canceled context, writes that fail during a blip, and a write that is
// stored but reported as failed. The library's own tests use it against
// memstore and pgstore alike.
package faultstore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/analytics-webhooks/webhook"
)

// Backend is a Storage that also records in batches, as memstore and
// pgstore do.
type Backend interface {
	webhook.Storage
	webhook.BatchRecorder
}

// ErrBlip is what a failing write returns: a lost connection.
var ErrBlip = errors.New("faultstore: connection reset by peer")

// CutOffClaim makes its first claim wait until Proceed is closed (or its
// context ends), then claim, and report its context's error if that
// ended meanwhile, as a database driver does when a query is canceled
// after the database committed it: the rows are leased, and the caller
// never hears of them. Entered is closed when the first claim starts.
// Build it with NewCutOffClaim.
type CutOffClaim struct {
	webhook.Storage
	Entered chan struct{}
	Proceed chan struct{}
	once    sync.Once
}

// NewCutOffClaim wraps s.
func NewCutOffClaim(s webhook.Storage) *CutOffClaim {
	return &CutOffClaim{Storage: s, Entered: make(chan struct{}), Proceed: make(chan struct{})}
}

// ClaimDeliveries implements webhook.Storage.
func (s *CutOffClaim) ClaimDeliveries(ctx context.Context, p webhook.ClaimParams) ([]*webhook.Claim, error) {
	first := false
	s.once.Do(func() { first = true })
	if !first {
		return s.Storage.ClaimDeliveries(ctx, p)
	}
	close(s.Entered)
	select {
	case <-ctx.Done():
	case <-s.Proceed:
	}
	cs, err := s.Storage.ClaimDeliveries(context.WithoutCancel(ctx), p)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return cs, err
}

// FailWrites fails the first Fail result writes (single or batched) with
// ErrBlip, as during a database blip, and counts every write in Writes.
type FailWrites struct {
	Backend
	Fail   atomic.Int32
	Writes atomic.Int32
}

// RecordAttempt implements webhook.Storage.
func (s *FailWrites) RecordAttempt(ctx context.Context, p webhook.RecordAttemptParams) error {
	s.Writes.Add(1)
	if s.Fail.Add(-1) >= 0 {
		return ErrBlip
	}
	return s.Backend.RecordAttempt(ctx, p)
}

// RecordAttempts implements webhook.BatchRecorder.
func (s *FailWrites) RecordAttempts(ctx context.Context, ps []webhook.RecordAttemptParams) ([]error, error) {
	s.Writes.Add(1)
	if s.Fail.Add(-1) >= 0 {
		return nil, ErrBlip
	}
	return s.Backend.RecordAttempts(ctx, ps)
}

// LoseAnswer stores the first result write and then reports it failed
// with ErrBlip, as when a connection drops after the database committed:
// the caller cannot tell that it was written.
type LoseAnswer struct {
	Backend
	lost atomic.Bool
}

// Lost reports whether a write's answer was lost.
func (s *LoseAnswer) Lost() bool { return s.lost.Load() }

// RecordAttempt implements webhook.Storage.
func (s *LoseAnswer) RecordAttempt(ctx context.Context, p webhook.RecordAttemptParams) error {
	err := s.Backend.RecordAttempt(ctx, p)
	if err == nil && s.lost.CompareAndSwap(false, true) {
		return ErrBlip
	}
	return err
}

// RecordAttempts implements webhook.BatchRecorder.
func (s *LoseAnswer) RecordAttempts(ctx context.Context, ps []webhook.RecordAttemptParams) ([]error, error) {
	errs, err := s.Backend.RecordAttempts(ctx, ps)
	if err == nil && s.lost.CompareAndSwap(false, true) {
		return nil, ErrBlip
	}
	return errs, err
}
