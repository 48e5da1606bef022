package ingest

// PieceSize is pieceSize, for tests.
var PieceSize = pieceSize

// LedgerOnce returns o set to read the whole ingest ledger at the start of
// every run, whatever its number of inputs.
func LedgerOnce(o Options) Options {
	o.ledgerOnceFrom = 1
	return o
}
