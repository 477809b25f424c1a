package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The state file's format and version. Version 3 holds the months by
// column, in binary and compressed, behind a JSON header line, with a
// SHA-256 trailer; versions 1 and 2 (JSON, version 2 adding the
// restatement ledger and the months' first-seen times) load as they are.
const (
	stateFormat        = "cloudcarbon_exporter/state"
	stateVersion       = 3
	oldestStateVersion = 1
)

// ErrStateInvalid marks a state file that exists but cannot be used: not
// ours, another version, corrupt or truncated. Callers log it and start
// empty; it is never fatal.
var ErrStateInvalid = errors.New("state file unusable")

// errChecksum marks a file whose bytes are not those written.
var errChecksum = errors.New("fails its checksum (corrupt or edited)")

// StateFile persists source data between runs. The payload is written to a
// temporary file and renamed over the old one, so a crash leaves either the
// old or the new file, and a checksum catches any other damage.
type StateFile struct {
	path string
	// blob, when set, keeps the bytes instead of the file at path.
	blob Blob
}

// NewStateFile returns a state file at path.
func NewStateFile(path string) *StateFile { return &StateFile{path: path} }

// Path returns the file's path.
func (f *StateFile) Path() string { return f.path }

// stateHeader is the first JSON value of every version: the whole file in
// versions 1 and 2 (Checksum and Data then set), the first line in
// version 3.
type stateHeader struct {
	Format   string          `json:"format"`
	Version  int             `json:"version"`
	Checksum string          `json:"sha256,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
	// Encoding names how version 3 holds the payload.
	Encoding string `json:"encoding,omitempty"`
}

// Load reads the state. A missing file yields no data and no error; an
// unusable one yields an error wrapping ErrStateInvalid.
func (f *StateFile) Load() (map[string]*SourceData, error) {
	if f.blob != nil {
		raw, err := f.blob.Load()
		if err != nil || raw == nil {
			return nil, wrapErr("read state", err)
		}
		return f.decode(raw)
	}
	raw, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	return f.decode(raw)
}

// decode checks and decodes the bytes of a state file of any version.
func (f *StateFile) decode(raw []byte) (map[string]*SourceData, error) {
	var h stateHeader
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("%w: %s is not a cloudcarbon_exporter state file: %w", ErrStateInvalid, f.path, err)
	}
	if h.Format != stateFormat {
		return nil, fmt.Errorf("%w: %s is not a cloudcarbon_exporter state file (format %q)", ErrStateInvalid, f.path, h.Format)
	}
	if h.Version < oldestStateVersion || h.Version > stateVersion {
		return nil, fmt.Errorf("%w: %s has format version %d, this build reads versions %d to %d",
			ErrStateInvalid, f.path, h.Version, oldestStateVersion, stateVersion)
	}
	var data map[string]*SourceData
	var err error
	if h.Version < 3 {
		data, err = decodeJSONState(&h)
	} else {
		data, err = decodeBinaryState(raw, dec.InputOffset(), h.Encoding)
	}
	if errors.Is(err, errChecksum) {
		return nil, fmt.Errorf("%w: %s %w", ErrStateInvalid, f.path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrStateInvalid, f.path, err)
	}
	for name, d := range data {
		if d == nil || d.Name != name {
			return nil, fmt.Errorf("%w: %s: inconsistent entry %q", ErrStateInvalid, f.path, name)
		}
		for m, md := range d.Months {
			if md == nil {
				return nil, fmt.Errorf("%w: %s: empty month %s of %q", ErrStateInvalid, f.path, m, name)
			}
		}
	}
	return data, nil
}

// decodeJSONState decodes versions 1 and 2, whose header holds the
// payload, and moves each source's months onto one label table.
func decodeJSONState(h *stateHeader) (map[string]*SourceData, error) {
	sum := sha256.Sum256(h.Data)
	if hex.EncodeToString(sum[:]) != h.Checksum {
		return nil, errChecksum
	}
	var data map[string]*SourceData
	if err := json.Unmarshal(h.Data, &data); err != nil {
		return nil, err
	}
	for _, d := range data {
		if d == nil {
			continue
		}
		for m, md := range d.Months {
			if md != nil {
				md.month = m
			}
		}
		d.CompactLabels()
	}
	return data, nil
}

// tempPattern matches the temporary files Save writes before renaming.
func (f *StateFile) tempPattern() string { return filepath.Base(f.path) + ".tmp-*" }

// RemoveStale removes the temporary files of this state file that a
// process killed during a save left behind; called at start, before any
// save of this process, it returns how many it removed.
func (f *StateFile) RemoveStale() (int, error) {
	if f.blob != nil {
		return 0, nil // a blob is replaced whole, never through a temporary
	}
	stale, err := filepath.Glob(filepath.Join(filepath.Dir(f.path), f.tempPattern()))
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, name := range stale {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// Save writes the state atomically, streaming it: nothing but small
// buffers is held besides the data itself.
func (f *StateFile) Save(data map[string]*SourceData) error {
	if f.blob != nil {
		var b bytes.Buffer
		if err := writeState(&b, data); err != nil {
			return fmt.Errorf("encode state: %w", err)
		}
		return wrapErr("write state", f.blob.Save(b.Bytes()))
	}
	dir := filepath.Dir(f.path)
	tmp, err := os.CreateTemp(dir, f.tempPattern())
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := writeState(tmp, data); err != nil {
		tmp.Close()
		return fmt.Errorf("write state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	// Make the rename itself durable.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
