package duckdb

import "context"

// CompactNow compacts the intel summary now, for tests.
func (s *Store) CompactNow(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.compact(ctx)
}

// MatchUncompacted makes MatchIndicators read what waits for compaction,
// as a read-only store does, for tests.
func (s *Store) MatchUncompacted() { s.matchUncompacted = true }
