package ibm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// The cost feed, for provisional months.
//
// IBM publishes a month's emissions about 16 days after it ends, while
// its usage reports carry the current month's cost to date, updated daily.
// The cost feed reads them: no IBM Go SDK for the usage reports is served,
// so, as for the Carbon Calculator, the package speaks the REST APIs over
// go-sdk-core with the source's own IAM token, retries and bounds.
//
//   - A standard account (no enterprise scope configured): the Usage
//     Reports API's account summary, GET /v4/accounts/{account_id}/
//     summary/{billingmonth}, one request per month. The account is the one
//     the API key's IAM token names (its account.bss claim), the account
//     the Carbon Calculator reports. The summary's account_resources give
//     the billable cost per resource (service), whose resource_name is the
//     service's display name, as the Carbon Calculator's service is: the
//     records carry it as their service label, so that a service's
//     emissions per dollar match where both APIs name it alike. An older
//     summary without account_resources gives the account's billable
//     cost only (resources.billable_cost), under service Unknown.
//     Permission: AccountSummaryPermission.
//   - An enterprise, account group or enterprise account: the Enterprise
//     Usage Reports API, GET /v1/resource-usage-reports with
//     enterprise_id, account_group_id or account_id and the month, paged by
//     an opaque offset in the next link. An enterprise or account group is
//     asked for its immediate children (children=true), and each account
//     group among them in turn, so that the accounts at every depth are
//     read; an enterprise account is asked for itself. Each account's
//     report gives its billable cost. Permission: EnterpriseUsagePermission.
//
// What the usage reports cannot match. Neither API reports a location:
// every cost record's location is Unknown, and an estimate finds its
// emissions per dollar per account and service instead (or per account).
// The Enterprise Usage Reports API names resources by catalog id only,
// never by the display names the Carbon Calculator uses: an enterprise's
// cost records are per account, under service Unknown. Support charges,
// subscription credits and non-billable (free tier) usage are left out:
// the cost is the billable cost of resources, the one that follows usage.
// The figures are in the account's billing currency (US dollars for most
// accounts), which neither API converts: the emissions per unit of cost
// of a month and the cost of another are in the same currency, so an
// estimate does not depend on it, exchange-rate moves aside.

// Paths of the cost feed's APIs.
const (
	accountSummaryPath  = "/v4/accounts/{account_id}/summary/{billingmonth}"
	enterpriseUsagePath = "/v1/resource-usage-reports"
	// enterprisePageLimit is the reports asked for per page.
	enterprisePageLimit = 100
)

// accountSummaryRoute recognises an account summary request, whatever
// the account and month.
var accountSummaryRoute = regexp.MustCompile(`/v4/accounts/[^/]+/summary/[^/]+$`)

// accountIDPattern is the shape of an account id in the IAM token.
var accountIDPattern = regexp.MustCompile(`^[a-z0-9]{32}$`)

// Entity types of the Enterprise Usage Reports API, as of the Carbon
// Calculator's enterprise rows.
const entityTypeAccountGroup = "account_group"

// Wire format of the account summary: the fields the feed reads. Pointers
// mark figures whose absence matters.
type wireSummary struct {
	AccountID        string             `json:"account_id"`
	Month            string             `json:"month"`
	Currency         string             `json:"billing_currency_code"`
	AccountResources []wireResourceCost `json:"account_resources"`
	Resources        *struct {
		BillableCost *float64 `json:"billable_cost"`
	} `json:"resources"`
}

type wireResourceCost struct {
	ResourceID   string   `json:"resource_id"`
	ResourceName string   `json:"resource_name"`
	BillableCost *float64 `json:"billable_cost"`
}

// Wire format of the Enterprise Usage Reports API's answer.
type wireReports struct {
	Next    *wireLink    `json:"next"`
	Reports []wireReport `json:"reports"`
}

type wireReport struct {
	EntityID     string   `json:"entity_id"`
	EntityType   string   `json:"entity_type"`
	Month        string   `json:"month"`
	Currency     string   `json:"currency_code"`
	BillableCost *float64 `json:"billable_cost"`
}

// ReadCosts returns the billable cost of each of months (the current one
// to date) from IBM's usage reports, in records that carry cost only,
// labelled as Fetch labels emissions where the usage reports say as much
// (see above): the account, the service where the account summary names
// it, Unknown otherwise. A month without usage yields no record. It is the
// cost feed of a source that asks for provisional months (see
// Config.Provisional). Months are read in parallel, at most
// PageConcurrency at once; errors are classified as Fetch's, a denied
// permission naming the role.
func (p *Provider) ReadCosts(ctx context.Context, months []provider.Month) ([]provider.Record, error) {
	ms := slices.Clone(months)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	read := p.summaryCosts
	if param, _ := p.costScope(); param != "" {
		read = p.enterpriseCosts
	}
	per := make([][]provider.Record, len(ms))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.PageConcurrency)
	for i, m := range ms {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				// Another month failed (or the caller gave up) while
				// this one waited: send nothing.
				return p.transportFailure(gctx, "cost of "+m.String(), err)
			}
			var err error
			per[i], err = read(gctx, m)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.Concat(per...), nil
}

// costScope returns the Enterprise Usage Reports API's query parameter and
// id of the configured enterprise scope, or "" for a standard account.
func (p *Provider) costScope() (param, id string) {
	switch {
	case p.opts.EnterpriseID != "":
		return "enterprise_id", p.opts.EnterpriseID
	case p.opts.EnterpriseGroupID != "":
		return "account_group_id", p.opts.EnterpriseGroupID
	case p.opts.EnterpriseAccountID != "":
		return "account_id", p.opts.EnterpriseAccountID
	}
	return "", ""
}

// summaryCosts reads month m's account summary of the account the IAM
// token names.
func (p *Provider) summaryCosts(ctx context.Context, m provider.Month) ([]provider.Record, error) {
	account, err := p.tokenAccount(ctx)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("GET /v4/accounts/%s/summary/%s", account, m)
	data, err := p.get(ctx, apiAccountSummary, what, p.opts.UsageReportsURL, accountSummaryPath,
		map[string]string{"account_id": account, "billingmonth": m.String()}, nil)
	if err != nil {
		return nil, err
	}
	var s wireSummary
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, err))
	}
	switch {
	case s.AccountResources == nil && s.Resources == nil:
		return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, errors.New("neither account_resources nor resources")))
	case s.Month != "" && s.Month != m.String():
		return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf("the summary of month %q", s.Month)))
	case s.AccountID != "" && s.AccountID != account:
		return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf("the summary of account %q", s.AccountID)))
	}
	p.noteCurrency(ctx, s.Currency)
	byService := map[string]float64{}
	for _, r := range s.AccountResources {
		if r.BillableCost != nil {
			byService[serviceLabel(r.ResourceName)] += *r.BillableCost
		}
	}
	if s.AccountResources == nil && s.Resources.BillableCost != nil {
		byService[Unknown] = *s.Resources.BillableCost
	}
	return p.costRecords(ctx, what, m, byService, true, func(service string) (string, string) { return account, service })
}

// enterpriseCosts reads month m's reports of the configured enterprise
// scope: the accounts under it, at every depth.
func (p *Provider) enterpriseCosts(ctx context.Context, m provider.Month) ([]provider.Record, error) {
	param, id := p.costScope()
	children := param != "account_id"
	type entity struct{ param, id string }
	queue := []entity{{param, id}}
	queued := map[string]bool{id: true}
	byAccount := map[string]float64{}
	requests := 0
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		offset := ""
		for {
			what := fmt.Sprintf("GET %s?%s=%s&month=%s", enterpriseUsagePath, e.param, e.id, m)
			if offset != "" {
				what += "&offset=" + offset
			}
			if requests++; requests > maxPages {
				return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf("more than %d pages", maxPages)))
			}
			q := url.Values{}
			q.Set(e.param, e.id)
			if children {
				q.Set("children", "true")
			}
			q.Set("month", m.String())
			q.Set("limit", strconv.Itoa(enterprisePageLimit))
			if offset != "" {
				q.Set("offset", offset)
			}
			data, err := p.get(ctx, apiEnterpriseUsage, what, p.opts.EnterpriseUsageReportsURL, enterpriseUsagePath, nil, q)
			if err != nil {
				return nil, err
			}
			var page wireReports
			if err := json.Unmarshal(data, &page); err != nil {
				return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, err))
			}
			next, err := nextOffset(page.Next)
			if err != nil {
				return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, err))
			}
			if len(page.Reports) > 0 || next != "" {
				if err := httpx.Page(ctx, len(page.Reports)); err != nil {
					return nil, p.transportFailure(ctx, what, err)
				}
			}
			for _, r := range page.Reports {
				if r.Month != "" && r.Month != m.String() {
					return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf("a report of month %q", r.Month)))
				}
				switch r.EntityType {
				case entityAccount:
					if r.EntityID == "" {
						return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, errors.New("an account report without entity_id")))
					}
					p.noteCurrency(ctx, r.Currency)
					if r.BillableCost != nil {
						byAccount[r.EntityID] += *r.BillableCost
					}
				case entityTypeAccountGroup:
					if children && r.EntityID != "" && !queued[r.EntityID] {
						queued[r.EntityID] = true
						queue = append(queue, entity{"account_group_id", r.EntityID})
					}
				}
			}
			if next == "" {
				break
			}
			if next == offset {
				return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf("next link does not advance (offset %q)", next)))
			}
			offset = next
		}
	}
	what := fmt.Sprintf("GET %s?%s=%s&month=%s", enterpriseUsagePath, param, id, m)
	return p.costRecords(ctx, what, m, byAccount, false, func(account string) (string, string) { return account, Unknown })
}

// nextOffset returns the offset of a next link: the opaque value to send
// back, never the link itself, so that a link naming another host cannot
// redirect the bearer token.
func nextOffset(next *wireLink) (string, error) {
	if next == nil || strings.TrimSpace(next.Href) == "" {
		return "", nil
	}
	u, err := url.Parse(strings.TrimSpace(next.Href))
	if err != nil {
		return "", fmt.Errorf("next link: %w", err)
	}
	off := u.Query().Get("offset")
	if off == "" {
		return "", fmt.Errorf("next link without an offset: %q", u.Redacted())
	}
	return off, nil
}

// costRecords turns month m's cost by key into records, labelled by
// labels, in a stable order, charging them to the refresh's budget as one
// page when charge is set (the pages of a paged answer are charged as
// they come).
func (p *Provider) costRecords(ctx context.Context, what string, m provider.Month, cost map[string]float64, charge bool,
	labels func(key string) (account, service string)) ([]provider.Record, error) {
	if charge && len(cost) > 0 {
		if err := httpx.Page(ctx, len(cost)); err != nil {
			return nil, p.transportFailure(ctx, what, err)
		}
	}
	out := make([]provider.Record, 0, len(cost))
	for _, k := range slices.Sorted(maps.Keys(cost)) {
		if !finite(cost[k]) {
			return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf("the billable cost of %q in %s is out of range", k, m)))
		}
		account, service := labels(k)
		out = append(out, provider.Record{
			Provider: Name, Account: account, Service: service, Location: Unknown, Scope: provider.ScopeNone,
			Month: m, CostUSD: cost[k], Known: provider.Cost,
		})
	}
	return out, nil
}

// noteCurrency logs a billing currency other than US dollars, which the
// cost records carry unconverted.
func (p *Provider) noteCurrency(ctx context.Context, currency string) {
	if currency != "" && !strings.EqualFold(currency, "USD") {
		p.log.DebugContext(ctx, "ibm usage reports in a currency other than US dollars; the cost feed keeps it unconverted", "currency", currency)
	}
}

// tokenAccount returns the account the source's IAM token names: the
// account of the API key, which the Carbon Calculator reports.
func (p *Provider) tokenAccount(ctx context.Context) (string, error) {
	tok, err := p.token(ctx)
	if err != nil {
		return "", p.tokenFailure(ctx, err)
	}
	account := accountOfToken(tok)
	if !accountIDPattern.MatchString(account) {
		return "", p.fail(provider.ReasonMalformed, 0, malformed("POST "+iamPath,
			errors.New("the IAM token names no account (its account.bss claim), whose usage reports the cost of provisional months needs")))
	}
	return account, nil
}

// accountOfToken returns the account.bss claim of an IAM access token, ""
// when it has none. The token comes from IAM over TLS and is only read
// here, never trusted for anything but the account to ask about: its
// signature is IBM's to check.
func accountOfToken(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var claims struct {
		Account struct {
			BSS string `json:"bss"`
		} `json:"account"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.Account.BSS
}

// costFeed is the provider of a source that asks for provisional months:
// the Provider, which implements provider.CostFeed through it. A source
// that does not ask gets the bare *Provider, which does not, so that no
// caller reads usage reports it was not given permission for.
type costFeed struct{ *Provider }

var _ provider.CostFeed = costFeed{}

// Costs implements provider.CostFeed.
func (c costFeed) Costs(ctx context.Context, months []provider.Month) ([]provider.Record, error) {
	return c.ReadCosts(ctx, months)
}

// NewCostFeed returns p as the provider of a source that asks for
// provisional months: p, implementing provider.CostFeed with ReadCosts.
func NewCostFeed(p *Provider) provider.Provider { return costFeed{p} }
