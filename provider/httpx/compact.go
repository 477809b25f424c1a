package httpx

import "io"

// CompactJSON returns r without the whitespace JSON allows between
// tokens, for a client that decodes an answer with encoding/json's
// Decoder or hands it to an SDK that reads it whole.
func CompactJSON(r io.Reader) io.Reader { return &compactReader{r: r} }

// compactReader drops the whitespace JSON allows between tokens.
// encoding/json's decoder keeps in its buffer every byte of whitespace
// that precedes a token, so a body padded with it would cost its whole
// size, twice over as the buffer grows.
type compactReader struct {
	r                 io.Reader
	inString, escaped bool
}

func (c *compactReader) Read(p []byte) (int, error) {
	for empty := 0; ; {
		n, err := c.r.Read(p)
		k := 0
		for _, b := range p[:n] {
			switch {
			case c.escaped:
				c.escaped = false
			case b == '\\':
				c.escaped = c.inString
			case b == '"':
				c.inString = !c.inString
			case !c.inString && (b == ' ' || b == '\t' || b == '\n' || b == '\r'):
				continue
			}
			p[k] = b
			k++
		}
		if k > 0 || err != nil {
			return k, err
		}
		// A run of whitespace reads as nothing; a reader that keeps
		// returning nothing at all is broken.
		if n == 0 {
			if empty++; empty == 100 {
				return 0, io.ErrNoProgress
			}
		}
	}
}
