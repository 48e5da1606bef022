//go:build !linux

package collect

import (
	"context"
	"net"
)

// listenUDP binds a UDP socket; sockets are not shared off Linux (the
// collector is then best given one socket per address).
func listenUDP(ctx context.Context, addr string, _ bool) (*net.UDPConn, error) {
	pc, err := (&net.ListenConfig{}).ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// forceReadBuffer is Linux's.
func forceReadBuffer(*net.UDPConn, int) {}

// readBuffer is not known off Linux.
func readBuffer(*net.UDPConn) int { return 0 }

// kernelDrops are read on Linux only.
func kernelDrops([]*net.UDPConn) int64 { return 0 }
