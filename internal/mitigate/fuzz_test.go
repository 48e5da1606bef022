package mitigate

import (
	"bufio"
	"bytes"
	"net/netip"
	"testing"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// FuzzReadMessage feeds what a BGP peer might send to the speaker's
// reader: it returns a message or an error, never panics.
func FuzzReadMessage(f *testing.F) {
	sp, err := NewSpeaker(BGPConfig{Peer: "127.0.0.1", LocalAS: 65001, PeerAS: 65000, RouterID: netip.MustParseAddr("10.0.0.1")}, nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range []*bgp.BGPMessage{bgp.NewBGPKeepAliveMessage(),
		bgp.NewBGPOpenMessage(65000, 90, "10.0.0.2", []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(
			[]bgp.ParameterCapabilityInterface{bgp.NewCapMultiProtocol(bgp.RF_FS_IPv4_UC), bgp.NewCapFourOctetASNumber(65000)})}),
		bgp.NewBGPNotificationMessage(6, 2, nil)} {
		b, err := m.Serialize()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, r := range []Route{{Kind: Blackhole, Dst: host("10.20.0.40")}, {Kind: Blackhole, Dst: host("2001:db8::1")},
		{Kind: FlowSpec, Dst: host("10.20.0.40"), Proto: "udp", SrcPort: 53, MinLength: 100, MaxLength: 1500}} {
		for _, w := range []bool{false, true} {
			m, err := sp.update(r, w)
			if err != nil {
				f.Fatal(err)
			}
			b, err := m.Serialize()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = readMessage(bufio.NewReader(bytes.NewReader(data)))
	})
}
