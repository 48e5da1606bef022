package collect

import (
	"bufio"
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenUDP binds a UDP socket, shared with other sockets on the same
// address when share is set (SO_REUSEPORT: the kernel spreads senders
// over them by their address and port).
func listenUDP(ctx context.Context, addr string, share bool) (*net.UDPConn, error) {
	lc := net.ListenConfig{}
	if share {
		lc.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	pc, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// forceReadBuffer asks for n bytes of receive buffer past
// net.core.rmem_max, which only a process with CAP_NET_ADMIN may.
func forceReadBuffer(conn *net.UDPConn, n int) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	})
}

// readBuffer returns the receive buffer the kernel gave conn: Linux
// reports twice the usable size (its bookkeeping), halved here.
func readBuffer(conn *net.UDPConn) int {
	rc, err := conn.SyscallConn()
	if err != nil {
		return 0
	}
	var n int
	_ = rc.Control(func(fd uintptr) {
		n, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	return n / 2
}

// kernelDrops sums the drops the kernel counted on conns' sockets, from
// /proc/net/udp and udp6 (the last column, by the sockets' inodes).
func kernelDrops(conns []*net.UDPConn) int64 {
	inodes := map[uint64]bool{}
	for _, c := range conns {
		rc, err := c.SyscallConn()
		if err != nil {
			continue
		}
		_ = rc.Control(func(fd uintptr) {
			var st unix.Stat_t
			if unix.Fstat(int(fd), &st) == nil {
				inodes[st.Ino] = true
			}
		})
	}
	var drops int64
	for _, name := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		drops += procDrops(name, inodes)
	}
	return drops
}

func procDrops(name string, inodes map[uint64]bool) int64 {
	f, err := os.Open(name)
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }()
	var drops int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 13 {
			continue
		}
		ino, err := strconv.ParseUint(fs[9], 10, 64)
		if err != nil || !inodes[ino] {
			continue
		}
		if n, err := strconv.ParseInt(fs[12], 10, 64); err == nil {
			drops += n
		}
	}
	return drops
}
