package ibm

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// Wire format of GET /v1/carbon_emissions. Pointers mark fields whose
// absence matters: a missing figure is unknown, not zero.
type wirePage struct {
	CarbonEmissions []wireRow `json:"carbon_emissions"`
	TotalCount      *int64    `json:"total_count"`
	Offset          int64     `json:"offset"`
	Limit           int64     `json:"limit"`
	Next            *wireLink `json:"next"`
}

type wireLink struct {
	Href string `json:"href"`
}

type wireRow struct {
	AccountID         string     `json:"account_id"`
	CarbonEmission    *float64   `json:"carbon_emission"`
	EnergyConsumption *float64   `json:"energy_consumption"`
	Service           string     `json:"service"`
	Location          string     `json:"location"`
	ResourceGroupID   string     `json:"resource_group_id"`
	Month             *wireMonth `json:"month"`
	GroupBy           *wireGroup `json:"group_by"`

	// Present when an enterprise filter is used. They describe the entity
	// of the filter (or, with group_by=enterprise_account, possibly the
	// grouped account), not necessarily the row's account.
	EntityType       string `json:"entity_type"`
	EntityID         string `json:"entity_id"`
	EntityName       string `json:"entity_name"`
	ParentEntityID   string `json:"parent_entity_id"`
	ParentEntityName string `json:"parent_entity_name"`
}

type wireMonth struct {
	Value string `json:"value"`
	Min   string `json:"min"`
	Max   string `json:"max"`
}

type wireGroup struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Entity types of enterprise rows.
const (
	entityAccount      = "account"
	entityAccountGroup = "account_group"
	entityEnterprise   = "enterprise"
)

type recordKey struct {
	account, service, location string
	month                      provider.Month
}

// recordSet sums rows into records, one per (account, service, location,
// month). The records are one slice that the fetch returns as it is, and
// equal labels share one string rather than one per row: a fetch of many
// months holds little beyond its records.
type recordSet struct {
	index   map[recordKey]int
	records []provider.Record
	// labels maps each raw value, by kind, to its label.
	labels [3]map[string]string
}

func newRecordSet() *recordSet {
	s := &recordSet{index: map[recordKey]int{}}
	for i := range s.labels {
		s.labels[i] = map[string]string{}
	}
	return s
}

// Kinds of labels in recordSet.labels.
const (
	labelAccount = iota
	labelService
	labelLocation
)

// label returns the label of raw value v of a kind, made by f the first
// time.
func (s *recordSet) label(kind int, v string, f func(string) string) string {
	if l, ok := s.labels[kind][v]; ok {
		return l
	}
	l := f(v)
	s.labels[kind][strings.Clone(v)] = l
	return l
}

// record returns the record of k, adding it empty if new.
func (s *recordSet) record(k recordKey) *provider.Record {
	if i, ok := s.index[k]; ok {
		return &s.records[i]
	}
	s.index[k] = len(s.records)
	s.records = append(s.records, provider.Record{
		Provider: Name, Account: k.account, Service: k.service, Location: k.location,
		Scope: provider.ScopeUnspecified, Month: k.month,
	})
	return &s.records[len(s.records)-1]
}

// Fetch implements provider.Provider.
//
// Query plan: the API documents that with group_by=none every row is one
// account / service / resource group / location / month combination, so
// one paged query per contiguous run of requested months yields the whole
// (account, service, location, month) breakdown; we sum over resource
// groups client-side. Every other group_by value collapses a dimension we
// need, and a query per dimension would cost more requests and still not
// join. Non-contiguous months get one range per run so that we never
// download months the caller did not ask for. An enterprise or account
// group costs one more paged query (group_by=enterprise_account, over the
// whole requested span, as it only lists accounts) for the account names
// and parents of the _info metric. For a single enterprise account the
// data rows themselves carry its name and parent. The queries run one
// after another; the pages of each are fetched in parallel once its first
// page has told how many there are (see pages).
func (p *Provider) Fetch(ctx context.Context, months []provider.Month) (provider.Result, error) {
	runs := provider.Runs(months)
	if len(runs) == 0 {
		return provider.Result{}, nil
	}
	want := make(map[provider.Month]bool, len(months))
	for _, m := range months {
		want[m] = true
	}

	records := newRecordSet()
	accounts := make(map[string]provider.Account)
	for _, run := range runs {
		q := p.scopeQuery("none", run[0], run[1])
		err := p.pages(ctx, q, func(what string, row *wireRow) error {
			if row.EntityType == entityAccount && row.EntityID != "" {
				mergeAccount(accounts, p.accountFromEntity(row))
			}
			return p.addRow(records, want, what, row)
		})
		if err != nil {
			return provider.Result{}, err
		}
	}

	if p.opts.EnterpriseID != "" || p.opts.EnterpriseGroupID != "" {
		q := p.scopeQuery("enterprise_account", runs[0][0], runs[len(runs)-1][1])
		err := p.pages(ctx, q, func(_ string, row *wireRow) error {
			if a, ok := p.accountFromGroupRow(row); ok {
				mergeAccount(accounts, a)
			}
			return nil
		})
		if err != nil {
			return provider.Result{}, err
		}
	}

	res := provider.Result{Records: records.records}
	for i := range res.Records {
		if id := res.Records[i].Account; accounts[id].ID == "" {
			accounts[id] = provider.Account{Provider: Name, ID: id}
		}
	}
	slices.SortFunc(res.Records, func(a, b provider.Record) int {
		return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.Account, b.Account),
			cmp.Compare(a.Service, b.Service), cmp.Compare(a.Location, b.Location))
	})
	singleAccount := p.opts.EnterpriseID == "" && p.opts.EnterpriseGroupID == ""
	for _, a := range accounts {
		if a.Name == "" && singleAccount && a.ID != provider.AccountPlaceholder {
			a.Name = p.opts.AccountName
		}
		res.Accounts = append(res.Accounts, a)
	}
	slices.SortFunc(res.Accounts, func(a, b provider.Account) int { return cmp.Compare(a.ID, b.ID) })
	return res, nil
}

// scopeQuery builds the query of one paged request, without paging.
func (p *Provider) scopeQuery(groupBy string, first, last provider.Month) url.Values {
	q := url.Values{}
	q.Set("group_by", groupBy)
	q.Add("month", "gte:"+first.String())
	q.Add("month", "lte:"+last.String())
	switch {
	case p.opts.EnterpriseID != "":
		q.Set("enterprise_id", p.opts.EnterpriseID)
	case p.opts.EnterpriseGroupID != "":
		q.Set("enterprise_group_id", p.opts.EnterpriseGroupID)
	case p.opts.EnterpriseAccountID != "":
		q.Set("enterprise_account_id", p.opts.EnterpriseAccountID)
	}
	return q
}

// addRow folds one group_by=none row into records.
func (p *Provider) addRow(records *recordSet, want map[provider.Month]bool, what string, row *wireRow) error {
	if row.Month == nil || row.Month.Value == "" {
		return p.fail(provider.ReasonMalformed, 0, malformed(what, errors.New("row without month.value")))
	}
	m, err := provider.ParseMonth(row.Month.Value)
	if err != nil {
		return p.fail(provider.ReasonMalformed, 0, malformed(what, err))
	}
	if !want[m] {
		return nil
	}
	var known provider.Quantity
	if row.CarbonEmission != nil {
		known |= provider.Emissions
	}
	if row.EnergyConsumption != nil {
		known |= provider.Energy
	}
	if known == 0 {
		return nil
	}

	account := row.AccountID
	if account == "" && row.EntityType == entityAccount {
		account = row.EntityID
	}
	if account == "" {
		account = provider.AccountPlaceholder
	}
	k := recordKey{
		account:  records.label(labelAccount, account, strings.Clone),
		service:  records.label(labelService, row.Service, serviceLabel),
		location: records.label(labelLocation, row.Location, locationLabel),
		month:    m,
	}
	r := records.record(k)
	// A (account, service, location, month) known in any resource group
	// is reported; a figure some resource groups lack counts as zero for
	// them, which is what IBM's own totals do. JSON has no NaN or
	// infinity, but a huge figure overflows in the unit conversion or the
	// sum, and an infinite value must never reach a metric.
	r.Known |= known
	if row.CarbonEmission != nil {
		sum := r.EmissionsGrams + *row.CarbonEmission*GramsPerCarbonEmission
		if !finite(sum) {
			return p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf(
				"carbon_emission %g of account %q, %s: the figure or its sum is out of range", *row.CarbonEmission, k.account, m)))
		}
		r.EmissionsGrams = sum
	}
	if row.EnergyConsumption != nil {
		sum := r.EnergyJoules + *row.EnergyConsumption*JoulesPerEnergyConsumption
		if !finite(sum) {
			return p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf(
				"energy_consumption %g of account %q, %s: the figure or its sum is out of range", *row.EnergyConsumption, k.account, m)))
		}
		r.EnergyJoules = sum
	}
	return nil
}

func finite(f float64) bool { return !math.IsInf(f, 0) && !math.IsNaN(f) }

// serviceLabel keeps IBM's service display names ("Cloud Object Storage"):
// they are the only identifier the API gives.
func serviceLabel(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return Unknown
	}
	return s
}

// locationLabel normalises IBM's location display names ("Washington DC")
// to lower case with runs of spaces replaced by "-" ("washington-dc"), the
// shape other providers' region labels have. IBM reports data-centre
// cities, not regions, so no mapping to region ids (us-east) is attempted.
func locationLabel(s string) string {
	s = strings.Join(strings.Fields(strings.ToLower(s)), "-")
	if s == "" {
		return Unknown
	}
	return s
}

// accountFromEntity describes an account from an entity_type "account" row.
func (p *Provider) accountFromEntity(row *wireRow) provider.Account {
	a := provider.Account{
		Provider:   Name,
		ID:         row.EntityID,
		Name:       row.EntityName,
		ParentID:   row.ParentEntityID,
		ParentName: row.ParentEntityName,
	}
	switch {
	case a.ParentID == "":
	case p.opts.EnterpriseID != "" && a.ParentID == p.opts.EnterpriseID:
		a.ParentType = entityEnterprise
	case p.opts.EnterpriseID != "" || p.opts.EnterpriseGroupID != "":
		// Inside an enterprise an account's parent is the enterprise
		// or an account group; the enterprise case is handled above.
		a.ParentType = entityAccountGroup
	default:
		// Scoped to one account we do not know the enterprise id, so
		// we cannot tell an account group from the enterprise.
	}
	return a
}

// accountFromGroupRow reads a group_by=enterprise_account row. Two shapes
// are handled: rows whose entity is the grouped account (entity_type
// "account", which carries its name and parent), and the shape of IBM's
// published example, where the entity is the filter's enterprise or
// account group and the account id is only in group_by.value; the account
// then gets that entity as parent and no name. Account group and
// enterprise rows of other groupings describe no account and are skipped:
// account groups have no emissions of their own, so they need no _info
// series.
func (p *Provider) accountFromGroupRow(row *wireRow) (provider.Account, bool) {
	if row.EntityType == entityAccount && row.EntityID != "" {
		return p.accountFromEntity(row), true
	}
	if row.GroupBy == nil || row.GroupBy.Type != "enterprise_account" || row.GroupBy.Value == "" {
		return provider.Account{}, false
	}
	a := provider.Account{Provider: Name, ID: row.GroupBy.Value}
	if row.EntityType == entityEnterprise || row.EntityType == entityAccountGroup {
		a.ParentType = row.EntityType
		a.ParentID = row.EntityID
		a.ParentName = row.EntityName
	}
	return a, true
}

// mergeAccount adds a, filling fields an earlier entry left empty.
func mergeAccount(accounts map[string]provider.Account, a provider.Account) {
	old, ok := accounts[a.ID]
	if !ok {
		accounts[a.ID] = a
		return
	}
	old.Name = cmp.Or(old.Name, a.Name)
	if old.ParentID == "" {
		old.ParentType, old.ParentID, old.ParentName = a.ParentType, a.ParentID, a.ParentName
	}
	accounts[a.ID] = old
}

// pages runs one paged query, calling visit for every row in page order.
//
// The next link decides whether there is another page and where it
// starts, but we do not request the link itself: we take its offset and
// limit and re-issue our own query on the configured base URL. That way a
// link naming another host (or IBM's documented links, which mangle the
// month filter) can never redirect the bearer token or change the query.
// A next link that does not move forward is an error, not a loop.
//
// When the first page shows plain offset paging (see plan), the other
// pages are fetched in parallel ahead of the walk, a few at a time (see
// window). They are only a prefetch: the walk below still follows the
// next links one page at a time, takes a prefetched page where a link
// leads to one, and fetches any other page itself. Rows are thus visited
// in the order, and the sums built in the order, of a sequential fetch,
// whatever order the pages arrived in, and a server whose links stray
// from its total_count is read as it says.
func (p *Provider) pages(ctx context.Context, q url.Values, visit func(what string, row *wireRow) error) error {
	offset, limit := int64(0), int64(pageLimit)
	var ahead *window // pages of limit pageLimit fetched ahead of the walk
	defer func() { ahead.stop() }()
	var page *wirePage
	for n := 0; ; n++ {
		what := pageWhat(q, offset)
		if n >= maxPages {
			return p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf("more than %d pages", maxPages)))
		}
		if ahead.next() == offset && limit == pageLimit {
			var err error
			if page, err = ahead.take(ctx, p, what); err != nil {
				return err
			}
		} else {
			if ahead.next() >= 0 {
				p.log.DebugContext(ctx, "ibm next link leaves the prefetched pages; following links one by one",
					"group_by", q.Get("group_by"), "offset", offset, "limit", limit)
				ahead.stop()
				ahead = nil
			}
			var err error
			if page, err = p.getPage(ctx, q, offset, limit); err != nil {
				return err
			}
			if n == 0 {
				ahead = p.prefetch(ctx, q, page)
			}
		}
		total := int64(-1)
		if page.TotalCount != nil {
			total = *page.TotalCount
		}
		p.log.DebugContext(ctx, "ibm carbon_emissions page",
			"group_by", q.Get("group_by"), "offset", offset, "rows", len(page.CarbonEmissions),
			"total_count", total)
		if err := httpx.Page(ctx, len(page.CarbonEmissions)); err != nil {
			return p.transportFailure(ctx, what, err)
		}
		for i := range page.CarbonEmissions {
			if err := visit(what, &page.CarbonEmissions[i]); err != nil {
				return err
			}
		}
		if page.Next == nil || strings.TrimSpace(page.Next.Href) == "" {
			return nil
		}
		nextOffset, nextLimit, err := p.nextPage(page.Next.Href, limit)
		if err != nil {
			return p.fail(provider.ReasonMalformed, 0, malformed(what, err))
		}
		if nextOffset <= offset {
			return p.fail(provider.ReasonMalformed, 0, malformed(what,
				fmt.Errorf("next link does not advance (offset %d after %d)", nextOffset, offset)))
		}
		offset, limit = nextOffset, nextLimit
	}
}

func pageWhat(q url.Values, offset int64) string {
	return fmt.Sprintf("GET %s?group_by=%s&offset=%d", carbonPath, q.Get("group_by"), offset)
}

// plan returns the offsets of the pages after first, when first shows
// plain offset paging that a parallel fetch can predict: it starts at 0,
// is full, echoes our limit, links to the very next page with the same
// limit, and gives a total_count that needs more pages, but no more than
// maxPages. Otherwise it returns nil and the walk follows the links one
// page at a time: a missing, inconsistent or hostile total_count then
// costs no request beyond what the links lead to, and maxPages still ends
// an endless chain of links.
func (p *Provider) plan(first *wirePage) []int64 {
	const limit = int64(pageLimit)
	if p.opts.PageConcurrency <= 1 || first.TotalCount == nil || first.Next == nil ||
		first.Offset != 0 || first.Limit != limit || int64(len(first.CarbonEmissions)) != limit {
		return nil
	}
	total := *first.TotalCount
	// Compared with maxPages*limit, not by rounding total up to pages:
	// total+limit-1 overflows for a total_count near the int64 maximum,
	// which then passed as a negative page count and made the offsets
	// slice below panic (found by FuzzPage).
	if total <= limit || total > maxPages*limit {
		return nil
	}
	next, nextLimit, err := p.nextPage(first.Next.Href, limit)
	if err != nil || next != limit || nextLimit != limit {
		return nil
	}
	offsets := make([]int64, 0, (total-1)/limit)
	for off := limit; off < total; off += limit {
		offsets = append(offsets, off)
	}
	return offsets
}

// prefetch starts fetching the pages plan predicts after first, or
// returns nil when it predicts none.
func (p *Provider) prefetch(ctx context.Context, q url.Values, first *wirePage) *window {
	offsets := p.plan(first)
	if len(offsets) == 0 {
		return nil
	}
	p.log.DebugContext(ctx, "ibm fetching pages in parallel", "group_by", q.Get("group_by"),
		"pages", len(offsets)+1, "total_count", *first.TotalCount, "concurrency", p.opts.PageConcurrency)
	return newWindow(ctx, p, q, offsets)
}

// nextPage reads offset and limit from a next link, resolved against the
// API base URL.
func (p *Provider) nextPage(href string, limit int64) (int64, int64, error) {
	u, err := url.Parse(strings.TrimSpace(href))
	if err != nil {
		return 0, 0, fmt.Errorf("next link: %w", err)
	}
	u = p.apiURL.ResolveReference(u)
	if u.Host != p.apiURL.Host {
		p.log.Debug("ibm next link names another host; using only its offset", "host", u.Host)
	}
	lq := u.Query()
	off, err := strconv.ParseInt(lq.Get("offset"), 10, 64)
	if err != nil || off < 0 {
		return 0, 0, fmt.Errorf("next link without a valid offset: %q", lq.Get("offset"))
	}
	if l, err := strconv.ParseInt(lq.Get("limit"), 10, 64); err == nil && l >= 1 && l <= pageLimit {
		limit = l
	}
	return off, limit, nil
}

// getPage fetches one page.
func (p *Provider) getPage(ctx context.Context, q url.Values, offset, limit int64) (*wirePage, error) {
	pq := url.Values{}
	for k, vs := range q {
		pq[k] = vs
	}
	pq.Set("limit", strconv.FormatInt(limit, 10))
	pq.Set("offset", strconv.FormatInt(offset, 10))
	what := pageWhat(q, offset)
	data, err := p.get(ctx, apiCarbon, what, p.opts.APIURL, carbonPath, nil, pq)
	if err != nil {
		return nil, err
	}
	return p.decodePage(what, data)
}

// get sends one GET of path (with params) on base and returns the answer's
// body, read within MaxResponseBytes. A 401 is retried once with a new
// token: IBM can revoke a token before the expiry go-sdk-core cached, and
// without the retry the provider would fail until the cached token ran
// out. Error answers are classified with from's hints.
func (p *Provider) get(ctx context.Context, from api, what, base, path string, params map[string]string, q url.Values) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		tok, err := p.token(ctx)
		if err != nil {
			return nil, p.tokenFailure(ctx, err)
		}
		body, resp, err := p.send(ctx, tok, base, path, params, q)
		if err != nil {
			if resp != nil && resp.StatusCode >= 400 {
				if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
					p.log.DebugContext(ctx, "ibm token rejected; fetching a new one")
					p.dropToken(tok)
					continue
				}
				return nil, p.statusFailure(what, resp, from)
			}
			return nil, p.transportFailure(ctx, what, err)
		}
		return p.readBody(ctx, what, body, resp)
	}
}

// send issues one request through go-sdk-core (authentication, retries).
// On success the caller owns body.
func (p *Provider) send(ctx context.Context, tok, base, path string, params map[string]string, q url.Values) (io.ReadCloser, *core.DetailedResponse, error) {
	b := core.NewRequestBuilder(core.GET).WithContext(context.WithValue(ctx, tokenKey{}, tok))
	if _, err := b.ResolveRequestURL(base, path, params); err != nil {
		return nil, nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		for _, v := range q[k] {
			b.AddQuery(k, v)
		}
	}
	b.AddHeader("Accept", "application/json")
	req, err := b.Build()
	if err != nil {
		return nil, nil, err
	}
	var body io.ReadCloser
	resp, err := p.service.Request(req, &body)
	if err != nil {
		if body != nil {
			_ = body.Close()
		}
		return nil, resp, err
	}
	if body == nil {
		// No body at all: let the decoder report it as malformed.
		body = io.NopCloser(strings.NewReader(""))
	}
	return body, resp, nil
}

// readBody reads the body of an answer, within MaxResponseBytes.
func (p *Provider) readBody(ctx context.Context, what string, body io.ReadCloser, resp *core.DetailedResponse) ([]byte, error) {
	defer func() { _ = body.Close() }()
	length := int64(-1)
	if resp != nil {
		if n, err := strconv.ParseInt(resp.Headers.Get("Content-Length"), 10, 64); err == nil {
			length = n
		}
	}
	data, err := httpx.ReadBody(body, length, MaxResponseBytes)
	if err != nil {
		if errors.Is(err, httpx.ErrResponseTooLarge) {
			return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, err))
		}
		return nil, p.transportFailure(ctx, what, err)
	}
	return data, nil
}

// decodePage decodes the body of one page.
func (p *Provider) decodePage(what string, data []byte) (*wirePage, error) {
	var page wirePage
	if err := json.Unmarshal(data, &page); err != nil {
		return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, err))
	}
	if page.CarbonEmissions == nil && page.TotalCount == nil {
		return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, errors.New("no carbon_emissions array")))
	}
	return &page, nil
}
