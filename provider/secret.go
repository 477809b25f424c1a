package provider

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
)

const redacted = "<secret>"

// Secret is a credential. It redacts itself wherever it could be printed:
// fmt with any verb, slog, YAML and JSON. The config is printed by
// --config.check, logged on reload and may end up in a bug report, and a
// key must not travel with it.
type Secret string

// String keeps the key out of %s and %v and out of anything that asks for a
// fmt.Stringer.
func (s Secret) String() string { return redacted }

// GoString keeps the key out of explicit GoString calls; fmt's %#v is
// covered by Format.
func (s Secret) GoString() string { return redacted }

// Format overrides every fmt verb, not only %s and %v: without it, %x or %d
// would print the underlying string.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", redacted)
		return
	}
	fmt.Fprint(f, redacted)
}

// LogValue keeps the key out of slog output, whichever handler is used.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalYAML keeps the key out of Config.String.
func (s Secret) MarshalYAML() (any, error) { return redacted, nil }

// MarshalJSON keeps the key out of JSON, including slog's JSON handler when
// it is given a whole Config.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Value returns the key. It is the only way to read it, so that every use is
// deliberate and easy to find.
func (s Secret) Value() string { return string(s) }

// Digest returns a one-way digest of a secret, for telling two secrets
// apart (or the same) without keeping or showing either.
func Digest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
