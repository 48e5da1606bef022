package pcap

import "time"

// Connections are kept on lists ordered by when they expire, so that
// finding the ones that timed out costs nothing per packet: one list per
// inactivity timeout (TCP, UDP, ICMP), ordered by last activity (a packet
// moves its connection to the tail), and one of closed connections,
// ordered by the time they are to be removed.

// connList is an intrusive doubly-linked list of connections.
type connList struct {
	head, tail *conn
	n          int
}

const (
	listTCP = iota
	listUDP
	listICMP
	listClosing
	numLists
)

func (l *connList) push(c *conn) {
	c.prev, c.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = c
	} else {
		l.head = c
	}
	l.tail = c
	l.n++
}

func (l *connList) remove(c *conn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next = nil, nil
	l.n--
}

// idleList is the list a connection waits on while open.
func (c *conn) idleList() int {
	switch {
	case c.tcp != nil:
		return listTCP
	case c.proto == protoUDP:
		return listUDP
	}
	return listICMP
}

// touch records activity: an open connection moves to its list's tail; a
// closed one joins the closing list once.
func (t *table) touch(c *conn) {
	want := c.idleList()
	if !c.closing.IsZero() {
		want = listClosing
	}
	if c.list == want && t.lists[want].tail == c {
		return
	}
	if c.listed {
		t.lists[c.list].remove(c)
	}
	c.list, c.listed = want, true
	t.lists[want].push(c)
}

// expired reports whether c is to be ended by now.
func (c *conn) expired(now time.Time) bool {
	if !c.closing.IsZero() {
		return now.After(c.closing)
	}
	return now.Sub(c.last) > c.timeout()
}

// expire ends the connections that timed out or finished closing by now.
func (t *table) expire(now time.Time) {
	for i := range t.lists {
		l := &t.lists[i]
		for l.head != nil && l.head.expired(now) {
			t.end(l.head)
		}
	}
}

// evict ends the longest-idle tenth of the open connections: the heads
// of the idle lists, oldest first.
func (t *table) evict() {
	n := max(len(t.conns)/10, 1)
	t.evicted += int64(n)
	for ; n > 0; n-- {
		var oldest *conn
		for i := range t.lists {
			if h := t.lists[i].head; h != nil && (oldest == nil || h.last.Before(oldest.last)) {
				oldest = h
			}
		}
		if oldest == nil {
			return
		}
		t.end(oldest)
	}
}
