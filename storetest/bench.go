package storetest

import (
	"testing"
	"time"

	"github.com/hookd/hookd"
)

// DeleteWhilePublishing deletes endpoint id of organization org with b's timer
// running, while another goroutine publishes what next returns, one call after
// another, until the deletion ends. It returns the longest of those publishes:
// how long the deletion held publishing up. For the stores' BenchmarkDeleteEndpoint.
func DeleteWhilePublishing(b *testing.B, s hookd.Store, org, id string, next func() []*hookd.Event) time.Duration {
	b.Helper()
	ctx := b.Context()
	var worst time.Duration
	stop, done := make(chan struct{}), make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			start := time.Now()
			if _, err := s.Publish(ctx, next()); err != nil {
				done <- err
				return
			}
			worst = max(worst, time.Since(start))
		}
	}()
	b.StartTimer()
	err := s.DeleteEndpoint(ctx, org, id)
	b.StopTimer()
	close(stop)
	if err != nil {
		<-done
		b.Fatalf("DeleteEndpoint: %v", err)
	}
	if err := <-done; err != nil {
		b.Fatalf("Publish: %v", err)
	}
	return worst
}
