package store

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// FuzzStateFileLoad feeds the state file loader arbitrary files: it must
// never panic, and what it accepts must be usable (every source named after
// its key, every month present).
func FuzzStateFileLoad(f *testing.F) {
	for _, name := range []string{"testdata/state_v1.json", "testdata/state_v2.json", "testdata/state_v3.bin",
		"../internal/app/testdata/state-v1.json", "../internal/app/testdata/state-v2.json"} {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"format":"cloudcarbon_exporter/state","version":1,"sha256":"","data":{}}`))
	f.Add([]byte(`{"format":"cloudcarbon_exporter/state","version":1,"sha256":"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","data":{}}`))
	sf := NewStateFile("fuzz.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		loaded, err := sf.decode(data)
		if err != nil {
			return
		}
		for name, d := range loaded {
			if d == nil || d.Name != name {
				t.Fatalf("accepted an inconsistent source %q", name)
			}
			for m, md := range d.Months {
				if md == nil {
					t.Fatalf("accepted an empty month %s", m)
				}
			}
		}
	})
}

// FuzzStatePayload feeds the decoder of version 3 payloads arbitrary
// bytes, past the checksum that guards it in a file: it must never panic
// nor allocate beyond what the bytes hold, and what it accepts must be
// readable (every record's label set in its table).
func FuzzStatePayload(f *testing.F) {
	if raw, err := os.ReadFile("testdata/state_v3.bin"); err == nil {
		if _, rest, ok := bytes.Cut(raw, []byte("\n")); ok && len(rest) > sha256.Size {
			if zr, err := gzip.NewReader(bytes.NewReader(rest[:len(rest)-sha256.Size])); err == nil {
				if payload, err := io.ReadAll(zr); err == nil {
					f.Add(payload)
				}
			}
		}
	}
	f.Add([]byte{1, 12, '{', '"', 'n', 'a', 'm', 'e', '"', ':', '"', 'x', '"', '}', 0, 0, 1, 0, 2, '{', '}', 1, 0})
	f.Fuzz(func(t *testing.T, payload []byte) {
		data, err := decodePayload(bufio.NewReader(bytes.NewReader(payload)))
		if err != nil {
			return
		}
		for name, d := range data {
			if d == nil || d.Name != name {
				t.Fatalf("accepted an inconsistent source %q", name)
			}
			for _, md := range d.Months {
				_ = md.Records()
				_ = md.Summary()
			}
		}
	})
}
