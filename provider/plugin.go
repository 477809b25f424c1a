package provider

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/alecthomas/kingpin/v2"
)

// Plugin describes one cloud completely: the exporter learns everything it
// knows of a cloud from this value, so that adding a cloud is one package
// and one line in the list of plug-ins.
type Plugin struct {
	// Name is the provider label value and the key of the cloud's section
	// in the configuration file.
	Name string
	// Schedule is when the cloud publishes a month.
	Schedule Schedule
	// NewConfig returns a new, empty entry of the cloud's configuration
	// section: a pointer to a struct that the section's YAML decodes into
	// strictly, by its yaml tags.
	NewConfig func() SourceConfig
	// Demo starts the cloud's wire-level fake with its demo dataset on
	// loopback, for --demo.
	Demo func(ctx context.Context, now time.Time, logger *slog.Logger) (*Demo, error)
	// Commands are subcommands the cloud adds to the command line.
	Commands []Command
	// Counters are the cloud's own self-metrics, one series per source
	// at zero from the start; a source adds to them through
	// Env.Counters.
	Counters []Counter
	// Example is the cloud's section of the example configuration file:
	// YAML with comments, every key shown set to its default, starting
	// with the section key. The example file is these sections in the
	// order of the list of plug-ins, after the exporter's own.
	Example string
	// Methodology is what the cloud's figures are, for the methodology
	// section of greenhouse-gas reports.
	Methodology Methodology
}

// Methodology is what an analyst filing a cloud's figures must say of
// them: where they come from, what they cover, in which unit the cloud
// publishes them and what its model versions mean. Reports print it next
// to the figures, so that a disclosure can cite each cloud's method.
type Methodology struct {
	// Source names the cloud's tool or API the figures come from.
	Source string
	// Includes says what the figures cover: scopes, methods, boundaries.
	Includes string
	// Unit is the unit the cloud publishes, and how the exporter converts
	// it to its base units.
	Unit string
	// URL is the cloud's published methodology.
	URL string
	// ModelVersion says what the version behind a month (Result.Revisions)
	// names, or that the cloud names none.
	ModelVersion string
	// Water is what the cloud's water figure measures, WaterUsage or
	// WaterWithdrawal; empty when it reports none. Reports never add
	// figures of different measures.
	Water string
	// Caveats are known limits of the figures; reports flag every row the
	// cloud contributes to with each one's Flag.
	Caveats []Caveat
}

// What a cloud's water figure measures, in the terms of GRI 303: water
// drawn from any source, or water used up.
const (
	WaterWithdrawal = "withdrawal"
	WaterUsage      = "usage"
)

// Caveat is a known limit of a cloud's figures.
type Caveat struct {
	// Flag names it in the flags of report rows: lower-case words joined
	// by underscores, such as unit_unconfirmed.
	Flag string
	// Text explains it to the reader of a report.
	Text string
}

// Counter is a self-metric a cloud declares: a counter per source.
type Counter struct {
	// Name is the metric's name without the cloudcarbon_ namespace,
	// ending in _total.
	Name, Help string
}

// SourceConfig is one entry of a cloud's configuration section.
type SourceConfig interface {
	// SourceName returns the entry's name field, which the configuration
	// defaults and keeps unique across every cloud.
	SourceName() *string
	// Check sets defaults, validates values and resolves secrets. It
	// reports problems through c, which knows where each key is in the
	// file.
	Check(c Checker)
	// Identity names what the source's data depends on (endpoint, account
	// scope), never a secret: persisted data is reused only while it
	// matches.
	Identity() string
	// Covers names the data the source reads, after Check: two sources of
	// one cloud that share a Coverage would count the same figures twice,
	// and the configuration refuses them. A source whose scope the file
	// cannot tell (the account behind a key) names what decides it.
	Covers() []Coverage
	// New builds the source's client. It makes no request.
	New(ctx context.Context, env Env) (Provider, error)
}

// ProvisionalSource is a SourceConfig whose entry may ask for provisional
// months (provisional: true): estimates of the months the provider has
// not published, from the cost its Provider reads through CostFeed.
type ProvisionalSource interface {
	WantsProvisional() bool
}

// Coverage is one part of the data a source reads.
type Coverage struct {
	// Key is equal for two sources exactly when they read this part; it
	// may be derived from a secret (a digest of a key), since it is never
	// shown.
	Key string
	// What names the part in messages, such as "enterprise 0123…": never
	// a secret.
	What string
}

// Checker is what a SourceConfig validates itself with. Keys are relative
// to the entry ("api_url", "subscriptions.2"); "" is the entry itself.
// Messages name keys as users write them ("ibm.api_url") and never carry a
// secret.
type Checker interface {
	// Errorf reports a problem at the line of key, or of the nearest
	// enclosing key the file sets.
	Errorf(key, format string, args ...any)
	// Has reports whether the file sets key, as opposed to it taking a
	// default.
	Has(key string) bool
	// Secret checks that the secret r is given in at most one way (exactly
	// one when required) and resolves it into r.Value.
	Secret(r SecretRef, required bool)
	// File makes *path absolute relative to the configuration file and
	// reports it when it cannot be read. Its content takes part in the
	// configuration's hash, so that a reload after rotating a credential
	// file is not skipped.
	File(key string, path *string)
}

// SecretRef is a credential that the file may give inline as Key, in a file
// as Key_file or in an environment variable as Key_env.
type SecretRef struct {
	// Key is the inline key, such as "api_key"; What names the secret in
	// messages, such as "API key".
	Key, What string
	Value     *Secret
	File, Env string
}

// Env is what the exporter gives a source when it builds its client.
type Env struct {
	// Name is the source's name in self-metrics and logs.
	Name string
	// Logger already carries the provider and source name.
	Logger *slog.Logger
	// Observe is told of every HTTP attempt.
	Observe RequestObserver
	// Counters add to the source's series of the plug-in's Counters, by
	// Counter.Name; a counter the plug-in did not declare is missing.
	Counters map[string]func(delta float64)
	// Connection is how the source reaches endpoints that the
	// configuration cannot fully describe.
	Connection Connection
}

// Connection says what a configuration cannot: the HTTP client that trusts
// a test server's own certificate, or that a fake checks no credentials.
// Production sources use the zero value.
type Connection struct {
	// HTTPClient, when set, is the base HTTP client of every request,
	// token requests included.
	HTTPClient *http.Client
	// WithoutAuthentication skips credentials entirely (GCP's BigQuery
	// fake checks none).
	WithoutAuthentication bool
}

// Demo is a cloud's fake serving its demo dataset.
type Demo struct {
	// Entries are the configuration section's entries, as plain YAML
	// values, so that demo sources are parsed, defaulted and validated
	// exactly as users' are.
	Entries []map[string]any
	// Connections are the sources' connections, by source name.
	Connections map[string]Connection
	// Close stops the fake.
	Close func()
}

// Command is a subcommand a cloud adds to the command line, such as
// gcp-setup.
type Command struct {
	Name, Help string
	// Setup declares the command's flags on cmd and returns what runs it.
	Setup func(cmd *kingpin.CmdClause) func(ctx context.Context, out io.Writer) error
}

// CheckURL rejects user info, queries and fragments because the providers
// append paths and add credentials themselves. The URL is never quoted
// back, since user info may hold a password. Messages read after the key:
// "ibm.api_url must ...".
func CheckURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("is not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return errors.New("must be an absolute http:// or https:// URL")
	case u.User != nil:
		return errors.New("must not contain a user name or password")
	case u.RawQuery != "" || u.ForceQuery:
		return errors.New("must not contain a query")
	case u.Fragment != "":
		return errors.New("must not contain a fragment")
	case !validPort(u.Port()):
		return errors.New("must have a port from 1 to 65535")
	}
	return nil
}

// validPort accepts no port (the scheme's) or one a TCP connection can
// use; url.Parse checks only that it is digits.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}
