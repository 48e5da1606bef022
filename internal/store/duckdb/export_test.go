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

// SetMatchPause makes MatchIndicators call f between its joins and its
// reading the rows they name, for tests.
func (s *Store) SetMatchPause(f func()) {
	s.matchMu.Lock()
	defer s.matchMu.Unlock()
	s.matchPause = f
}

// NarrowBitmaps makes MatchIndicators read the rows its joins name in
// parts spanning fewer than 3 rowids each, for tests.
func (s *Store) NarrowBitmaps() { s.maxBitSpan = 3 }

// SmallCompactPieces makes compact merge the summary in pieces of a few
// rows, for tests.
func (s *Store) SmallCompactPieces() { s.compactChunk = 5 }

// FailCompactPiece makes compact ask f before each piece commits; an
// error cuts the compaction short there, for tests.
func (s *Store) FailCompactPiece(f func(piece int64) error) { s.failPiece = f }
