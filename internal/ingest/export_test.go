package ingest

// PieceSize is pieceSize, for tests.
var PieceSize = pieceSize
