package store

import "fmt"

// Blob holds the bytes of a state file somewhere other than a file of its
// own: the OpenTelemetry Collector's storage extension, for one. The bytes
// are the state file's, envelope, version and checksum included, so that
// the same checks guard them wherever they are kept.
type Blob interface {
	// Load returns the bytes last saved, or nil when nothing was.
	Load() ([]byte, error)
	// Save replaces the bytes; it returns once they are durable.
	Save(data []byte) error
}

// NewStateBlob returns a state kept in b; name stands in for the file's
// path in messages.
func NewStateBlob(name string, b Blob) *StateFile { return &StateFile{path: name, blob: b} }

// wrapErr prefixes err with what failed, keeping nil nil.
func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
