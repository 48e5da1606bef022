package ingest

import (
	"io"
	"sync"
)

// readahead decompresses in its own goroutine, so that decompression and
// parsing of one large file run on two cores. It holds at most
// readaheadBufs buffers of readaheadSize bytes.
type readahead struct {
	full chan []byte
	free chan []byte
	stop chan struct{}
	cur  []byte // unread part of buf
	buf  []byte // buffer being read, returned to free when consumed
	err  error  // set by the producer before it closes full
	once sync.Once
	wg   sync.WaitGroup
}

const (
	readaheadSize = 256 << 10
	readaheadBufs = 4
)

func newReadahead(r io.Reader) *readahead {
	ra := &readahead{
		full: make(chan []byte, readaheadBufs),
		free: make(chan []byte, readaheadBufs),
		stop: make(chan struct{}),
	}
	for range readaheadBufs {
		ra.free <- make([]byte, readaheadSize)
	}
	ra.wg.Add(1)
	go ra.produce(r)
	return ra
}

func (ra *readahead) produce(r io.Reader) {
	defer ra.wg.Done()
	defer close(ra.full)
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		case <-ra.stop:
			return
		}
		// Fill the buffer, keeping the reader's own error: a truncated gzip
		// stream says io.ErrUnexpectedEOF, a clean end io.EOF.
		buf = buf[:cap(buf)]
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = r.Read(buf[n:])
			n += m
		}
		if n > 0 {
			select {
			case ra.full <- buf[:n]:
			case <-ra.stop:
				return
			}
		}
		if err != nil {
			ra.err = err
			return
		}
	}
}

// Read implements io.Reader.
func (ra *readahead) Read(p []byte) (int, error) {
	if len(ra.cur) == 0 {
		buf, ok := <-ra.full
		if !ok {
			// The producer's error is visible after full is closed.
			return 0, ra.err
		}
		ra.buf, ra.cur = buf, buf
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	if len(ra.cur) == 0 {
		ra.free <- ra.buf
		ra.buf = nil
	}
	return n, nil
}

// Close stops the producer and waits for it.
func (ra *readahead) Close() error {
	ra.once.Do(func() { close(ra.stop) })
	ra.wg.Wait()
	return nil
}
