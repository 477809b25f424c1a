package exposition

import (
	"bytes"
	"io"
	"runtime"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
)

// writeText writes the text that gzip members hold to w. Decompressing
// is the cost of a plain scrape, so members are decompressed ahead of the
// writer on as many goroutines as the process may run at once, each
// holding at most one member's text.
func (e *Exposition) writeText(w io.Writer, members [][]byte) error {
	n := min(runtime.GOMAXPROCS(0), len(members))
	if n < 2 {
		for _, m := range members {
			if err := e.inflate(w, m); err != nil {
				return err
			}
		}
		return nil
	}
	type text struct {
		b   *bytes.Buffer
		err error
	}
	done := make(chan struct{})
	defer close(done)
	out := make([]chan text, len(members))
	for i := range out {
		out[i] = make(chan text, 1)
	}
	// A worker takes a token before it claims the next member, and the
	// writer returns it once it wrote that member: the members claimed
	// and not written are the lowest ones, at most n of them.
	tokens := make(chan struct{}, n)
	var next atomic.Int64
	for range n {
		go func() {
			for {
				select {
				case tokens <- struct{}{}:
				case <-done:
					return
				}
				i := int(next.Add(1) - 1)
				if i >= len(members) {
					<-tokens
					return
				}
				b := e.texts.Get().(*bytes.Buffer)
				b.Reset()
				out[i] <- text{b, e.inflate(b, members[i])}
			}
		}()
	}
	for i := range members {
		t := <-out[i]
		if t.err == nil {
			_, t.err = w.Write(t.b.Bytes())
		}
		e.texts.Put(t.b)
		<-tokens
		if t.err != nil {
			return t.err
		}
	}
	return nil
}

// inflate writes the text of one gzip member to w.
func (e *Exposition) inflate(w io.Writer, member []byte) error {
	zr := e.readers.Get().(*gzip.Reader)
	defer e.readers.Put(zr)
	if err := zr.Reset(bytes.NewReader(member)); err != nil {
		return err
	}
	_, err := io.Copy(w, zr)
	return err
}
