// pcappeer decodes a capture with gopacket's DecodingLayerParser, the peer
// issue #17 measures dwell's capture analysis against. A module of its own
// so that dwell does not depend on gopacket.
module github.com/dwell-nsm/dwell/bench/pcappeer

go 1.26

require github.com/google/gopacket v1.1.19

require (
	golang.org/x/net v0.0.0-20190620200207-3b0461eec859 // indirect
	golang.org/x/sys v0.0.0-20190412213103-97732733099d // indirect
)
