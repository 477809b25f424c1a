package store

import (
	"os"
	"testing"
)

// FuzzStateFileLoad feeds the state file loader arbitrary files: it must
// never panic, and what it accepts must be usable (every source named after
// its key, every month present).
func FuzzStateFileLoad(f *testing.F) {
	for _, name := range []string{"testdata/state_v1.json", "testdata/state_v2.json", "../internal/app/testdata/state-v1.json"} {
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
