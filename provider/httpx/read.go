package httpx

import (
	"bytes"
	"errors"
	"io"
)

// Sizes of the chunks ReadBody reads a body of unknown length into.
const (
	firstChunk = 4 << 10
	maxChunk   = 1 << 20
)

// ReadBody reads a body whole, for a client that decodes it as one
// value: into one buffer of the announced length when length (a
// Content-Length) is known, else into chunks of growing size joined once
// at the end. A body thus costs at most twice its size, and one that
// fails (cut short, or past the client's cap, which the body enforces)
// at most once: io.ReadAll and a json.Decoder grow one buffer by copying
// it, which for an answer cut at the cap costs three times the cap. A
// length beyond limit is not trusted for the allocation.
func ReadBody(body io.Reader, length, limit int64) ([]byte, error) {
	if length >= 0 && length <= limit {
		buf := make([]byte, length)
		if n, err := io.ReadFull(body, buf); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, &TruncatedBodyError{Read: int64(n), Length: length}
			}
			return nil, err
		}
		return buf, nil
	}
	var chunks [][]byte
	buf := make([]byte, 0, firstChunk)
	for {
		if len(buf) == cap(buf) {
			chunks = append(chunks, buf)
			buf = make([]byte, 0, min(2*cap(buf), maxChunk))
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return bytes.Join(append(chunks, buf), nil), nil
		}
		if err != nil {
			return nil, err
		}
	}
}
