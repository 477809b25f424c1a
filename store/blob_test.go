package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// memBlob is a Blob in memory, failing as told.
type memBlob struct {
	data             []byte
	loadErr, saveErr error
	saves            int
}

func (b *memBlob) Load() ([]byte, error) { return b.data, b.loadErr }

func (b *memBlob) Save(data []byte) error {
	if b.saveErr != nil {
		return b.saveErr
	}
	b.data = bytes.Clone(data)
	b.saves++
	return nil
}

// TestStateBlobRoundTrip: a state kept in a blob seeds a restart as a
// state file does, and holds the very bytes the file would.
func TestStateBlobRoundTrip(t *testing.T) {
	blob := &memBlob{}
	s := New(Options{State: NewStateBlob("test storage", blob)})
	if seed := s.LoadState(); seed != nil {
		t.Fatalf("an empty blob seeded %v", seed)
	}
	s.Configure([]Key{ibmKey}, nil)
	s.Update("ibm", Data, withOctober)
	if blob.saves != 1 {
		t.Fatalf("blob saved %d times after one data update, want 1", blob.saves)
	}

	s2 := New(Options{State: NewStateBlob("test storage", blob)})
	s2.Configure([]Key{ibmKey}, s2.LoadState())
	d, _ := s2.Get("ibm")
	if latest, ok := d.LatestMonth(); !ok || latest != month("2026-10") || !d.Attempted {
		t.Errorf("after a restart from the blob: latest month %v, %v, attempted %v", latest, ok, d.Attempted)
	}

	path := filepath.Join(t.TempDir(), "state.json")
	if err := NewStateFile(path).Save(s.Snapshot().Sources); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, blob.data) {
		t.Errorf("blob holds other bytes than the state file:\n%s\nfile:\n%s", blob.data, file)
	}
	if n, err := NewStateBlob("test storage", blob).RemoveStale(); n != 0 || err != nil {
		t.Errorf("RemoveStale on a blob = %d, %v", n, err)
	}
}

func TestStateBlobFailures(t *testing.T) {
	broken := errors.New("storage unavailable")
	tests := []struct {
		name      string
		blob      *memBlob
		operation string
		wantErr   string
	}{
		{"load fails", &memBlob{loadErr: broken}, "load", "read state: storage unavailable"},
		{"damaged bytes", &memBlob{data: []byte(`{"format":"cloudcarbon_exporter/state","version":1,"sha256":"00","data":{}}`)}, "load", "test storage fails its checksum"},
		{"save fails", &memBlob{saveErr: broken}, "write", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := NewStateBlob("test storage", tt.blob)
			if tt.wantErr != "" {
				if _, err := state.Load(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Load() error = %v, want one containing %q", err, tt.wantErr)
				}
			}
			s := New(Options{State: state})
			if seed := s.LoadState(); seed != nil {
				t.Errorf("LoadState returned %v", seed)
			}
			s.Configure([]Key{ibmKey}, nil)
			s.Update("ibm", Data, withOctober)
			if got := testutil.ToFloat64(s.stateErrors.WithLabelValues(tt.operation)); got != 1 {
				t.Errorf("state %s errors = %v, want 1", tt.operation, got)
			}
			if d, _ := s.Get("ibm"); d == nil || len(d.Months) != 1 {
				t.Error("data lost to a storage failure")
			}
		})
	}
}
