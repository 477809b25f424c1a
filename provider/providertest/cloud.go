// Package providertest is the conformance suite every cloud plug-in
// passes. A cloud hands it its plug-in and a way to start its wire-level
// fake; the suite owns the scenarios and runs each one through the cloud's
// real client, built from a configuration entry exactly as a user's, and
// the real refresher, store, exposition and reports: totals per quantity
// and month against the fake's own, paging, every fault, the bounds of a
// refresh, the policy for values that are not measurements, data of one
// quantity only, secrets in no output, restarts and restatements, and the
// demo's exposition. Only tests import it.
package providertest

import (
	"net/http"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
)

// Cloud is what a cloud gives the suite.
type Cloud struct {
	Plugin provider.Plugin
	// Start starts the cloud's fake for one scenario. The suite serves its
	// Handler over TLS and drives its faults; it returns nil when the
	// cloud cannot serve the scenario's dataset (no market-based figures,
	// say).
	Start func(t testing.TB, s Scenario) *Fake
	// CostFeed, when the cloud reads cost for provisional months, starts
	// its fake for a scenario of the cost feed: the Fake's Entry asks for
	// provisional months, Data selects the cost requests, Error and
	// Permission are the cost API's, and Expected holds the cost of each
	// month the feed is asked for.
	CostFeed func(t testing.TB, s Scenario) *Fake
	// TagFeed, when the cloud reads the weight of tag values for
	// allocation, starts its fake for a scenario of the tag feed: the
	// Fake's Entry sets allocate_by to TagKey, Data selects the tag
	// requests, and TagExpected holds the weight of each value per month.
	TagFeed func(t testing.TB, s Scenario) *Fake
}

// Scenario says which dataset a fake serves.
type Scenario struct {
	// Only, when set, asks for records that carry only these quantities.
	Only provider.Quantity
	// PageSize, when set, asks for answers of at most that many rows, so
	// that the dataset spans at least three pages.
	PageSize int
	// Negative asks for one negative location-based (or, without one,
	// market-based) emissions value in the latest month.
	Negative bool
}

// Fake is one running scenario of a cloud's fake, as the suite sees it.
type Fake struct {
	// Handler serves every endpoint of the cloud (tokens included).
	Handler http.Handler
	// Now is the clock the dataset was built for: the suite's refreshers
	// run at it.
	Now time.Time
	// Entry is the configuration entry of a source that reads the fake
	// at baseURL; it holds Secret as the source's credential.
	Entry func(baseURL string) map[string]any
	// Connection is what the source needs besides its entry, given the
	// HTTP client that reaches the fake (nil: one that trusts nothing
	// but the system's roots). nil sets HTTPClient only.
	Connection func(client *http.Client) provider.Connection
	// Secret is the credential in Entry; Derived are the other forms a
	// client sends or gets for it (tokens the fake issues). None may
	// appear in any output.
	Secret  string
	Derived []string
	// Expected are the fake's own totals of what the exporter must serve,
	// computed from its dataset in its own units: per month, per
	// quantity. Yearly holds yearly water by year, if any.
	Expected map[provider.Month]Totals
	Yearly   map[int]float64
	// Data selects the requests for data, on which faults are injected
	// and pages are counted.
	Data func(*http.Request) bool
	// Error returns the cloud's error answer with status, in its wire
	// format: 401, 403, 429 and 500 are asked for.
	Error func(status int) fakehttp.Fault
	// Permission is what a 403 must name: the permission, role or
	// policy the credentials lack.
	Permission string
	// EmptyPage answers a data request with a page that holds no record
	// but links to another page; nil for an API that does not page.
	EmptyPage http.HandlerFunc
	// ResponseCap is the most bytes the client reads of one answer.
	ResponseCap int64
	// TagKey is the key a tag feed's fake tags its weight with, and
	// TagExpected the weight of each of its values per month ("" for
	// weight without it), from the fake's own dataset: cost, or
	// emissions for a dimension of the carbon data itself.
	TagKey      string
	TagExpected ValueTotals
	// Restate, when set, makes the fake serve every month under a new
	// model version, as the provider does when it restates its data.
	Restate func()
}

// Totals are sums per quantity.
type Totals map[provider.Quantity]float64
