package ingest

import "time"

// PieceSize is pieceSize, for tests.
var PieceSize = pieceSize

// LedgerOnce returns o set to read the whole ingest ledger at the start of
// every run, whatever its number of inputs.
func LedgerOnce(o Options) Options {
	o.ledgerOnceFrom = 1
	return o
}

// Patient returns o with batches waiting up to a minute for more pieces,
// so that a slow test machine does not cut a transaction short.
func Patient(o Options) Options {
	o.linger = time.Minute
	return o
}
