// Package provider holds the provider-neutral data model that every cloud
// client produces and the refresher, store, exposition and reports
// consume: months, records and their quantities, accounts, publication
// schedules and classified errors; and the plug-in contract a cloud
// fulfils. It names no cloud, imports no cloud SDK and knows nothing of
// Prometheus; the HTTP layer the clients share is provider/httpx.
package provider

import (
	"context"
	"time"
)

// Scope is the GHG Protocol scope of an emissions figure.
type Scope string

// Scope values. ScopeUnspecified is for providers that report no split.
const (
	Scope1           Scope = "1"
	Scope2           Scope = "2"
	Scope3           Scope = "3"
	ScopeUnspecified Scope = "unspecified"
	// ScopeNone marks records that carry no emissions (billing cost only).
	ScopeNone Scope = ""
)

// AccountPlaceholder is the account label of rows a provider attributes to
// no account (GCP rows without a project, for example), so that the label is
// never empty.
const AccountPlaceholder = "none"

// Quantity is a bit set naming which values of a record are known.
type Quantity uint8

// Quantities a record may carry.
const (
	Emissions Quantity = 1 << iota
	EmissionsMarketBased
	Energy
	Cost
	// Water is the month's water, in cubic metres (Scaleway's usage).
	Water
)

// Record is one provider figure for one month, in base units: grams of
// CO2e, joules, US dollars. Providers convert at ingest.
type Record struct {
	Provider string `json:"p"`
	Account  string `json:"a"`
	Service  string `json:"s"`
	Location string `json:"l"`
	Scope    Scope  `json:"sc,omitempty"`
	Month    Month  `json:"m"`

	EmissionsGrams   float64 `json:"e,omitempty"`
	MarketBasedGrams float64 `json:"mb,omitempty"`
	EnergyJoules     float64 `json:"j,omitempty"`
	CostUSD          float64 `json:"c,omitempty"`
	WaterCubicMeters float64 `json:"w,omitempty"`
	// Known says which of the values above the provider reported; a value
	// that is not known is absent from the metrics, never zero.
	Known Quantity `json:"k"`
}

// Has reports whether the record carries q.
func (r *Record) Has(q Quantity) bool { return r.Known&q != 0 }

// YearlyWater is water a provider reports per calendar year only (AWS
// water withdrawals): kept apart from the monthly records so that a yearly
// figure is never read as a month's.
type YearlyWater struct {
	Provider    string  `json:"p"`
	Account     string  `json:"a"`
	Service     string  `json:"s"`
	Location    string  `json:"l"`
	Year        int     `json:"y"`
	CubicMeters float64 `json:"m3"`
}

// Account describes an account for the _info metric: its display name and
// its parent (billing account, tenant, account group or enterprise).
type Account struct {
	Provider   string `json:"p"`
	ID         string `json:"id"`
	Name       string `json:"n,omitempty"`
	ParentType string `json:"pt,omitempty"`
	ParentID   string `json:"pid,omitempty"`
	ParentName string `json:"pn,omitempty"`
}

// Result is what one fetch returns. Accounts and Denied are nil when the
// fetch learned nothing about them (no report was due); the refresher then
// keeps what it had. An empty, non-nil Denied says that no account is
// denied.
type Result struct {
	Records  []Record
	Accounts []Account
	// Revisions optionally names the version of the provider's model or
	// data behind each fetched month (GCP: carbon_model_version, AWS:
	// ModelVersion). When a month comes back under another revision than
	// the source's, the source's other stored months are fetched again
	// once, and the restatement is counted.
	Revisions map[Month]string
	// YearlyWater, when not nil, replaces the source's yearly water
	// figures; nil keeps what was held.
	YearlyWater []YearlyWater
	// Denied lists accounts the provider refused to report on while
	// reporting the others (Azure: subscriptionAccessDecisionList).
	Denied []Denial
	// Partial, when set, is the failure of a secondary part of the fetch
	// (GCP: the billing query) while Records hold what succeeded. The
	// refresher serves them, counts the failure and asks for the months
	// again at the next attempt.
	Partial error
}

// Denial is an account the credentials may not read.
type Denial struct {
	Provider string `json:"p"`
	Account  string `json:"a"`
	// Reason is the provider's short reason, if any.
	Reason string `json:"r,omitempty"`
}

// Schedule says when a provider publishes a month and when that month's
// figures stop changing. The refresher refreshes often while a month is
// due and never again once a month is final and stored.
type Schedule struct {
	// PublishDelay is the time from the end of a month until the provider
	// is expected to publish it.
	PublishDelay time.Duration
	// SettleDelay is the time after publication during which the provider
	// may still restate the month.
	SettleDelay time.Duration
}

// PublishedAt returns when month m is expected to be published.
func (s Schedule) PublishedAt(m Month) time.Time { return m.End().Add(s.PublishDelay) }

// FinalAt returns when month m is expected to stop changing.
func (s Schedule) FinalAt(m Month) time.Time { return s.PublishedAt(m).Add(s.SettleDelay) }

// LatestPublished returns the latest month expected to be published by
// now, so that fakes and demo data agree with their provider on which
// months exist.
func (s Schedule) LatestPublished(now time.Time) Month {
	m := MonthOf(now)
	for s.PublishedAt(m).After(now) {
		m--
	}
	return m
}

// Provider is one configured source of provider data: for example one IBM
// Cloud API key, or one GCP export dataset.
type Provider interface {
	// Name returns the provider label value, the plug-in's Name.
	Name() string
	// Schedule returns the provider's publication schedule.
	Schedule() Schedule
	// Fetch returns the records of the given months and the accounts they
	// belong to. Months without data yield no records and no error. Errors
	// are *Error where the provider can classify them.
	Fetch(ctx context.Context, months []Month) (Result, error)
	// Close releases what the client holds (connections, credentials).
	// The exporter calls it once, when a reload replaces the source or at
	// shutdown, after the last Fetch has returned.
	Close() error
}

// CostFeed is a source that reads its cost apart from its emissions: the
// Provider of a source whose configuration asks for provisional months
// (provisional: true) implements it. Cost is published daily while
// emissions come months later; the published emissions per dollar of a
// month that has both, times the cost of a month that has no emissions
// yet, estimate that month.
type CostFeed interface {
	// Costs returns the cost of each of months, the current one to date,
	// grouped as Fetch groups emissions (account, service and location
	// with the same values), in records that carry Cost only. A month
	// without cost yields no record. Errors are *Error as Fetch's are; a
	// denied cost permission is ReasonPermission and names it.
	Costs(ctx context.Context, months []Month) ([]Record, error)
}
