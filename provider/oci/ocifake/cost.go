package ocifake

import (
	"bytes"
	"cmp"
	"encoding/json"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// The Usage API's summarized usage operation, which answers cost queries.
const (
	// CostPath is RequestSummarizedUsages's path.
	CostPath = "/20200107/usage"
	// OpCost names the operation for Requests, CostBodies and Inject.
	OpCost = "RequestSummarizedUsages"
)

// CostRow is one compartment / service / region / month of cost, in the
// dataset's currency (Dataset.Currency): what a COST query of
// RequestSummarizedUsages sums.
type CostRow struct {
	CompartmentPath, Service, Region string
	Month                            provider.Month
	Cost                             float64
	// Tagged is the part of Cost whose resources carry tags (WithTags).
	Tagged []TaggedCost
}

// DefaultCurrency is the currency of a dataset that names none.
const DefaultCurrency = "USD"

// How the fake prices emissions: an intensity in grams of CO2e per
// dollar for each service (a dollar of storage or networking carries
// less energy than a dollar of compute), times the region's grid
// relative to the average, drifting down by costDrift a month from
// costEpoch as grids decarbonise and prices move, with ±costNoise per key
// and month. The months after the dataset's latest (Oracle publishes
// emissions days to weeks late, cost within a day) carry each key's
// emissions of the latest month with ±usageNoise of change in usage; the
// current month is its cost to date. Costs are whole 64ths of a dollar,
// which the SDK's float32 computedAmount holds exactly below USD 262,144.
const (
	costDrift  = 0.003
	costNoise  = 0.04
	usageNoise = 0.03
	costStep   = 64
)

var (
	costEpoch = provider.NewMonth(2024, time.January)

	gramsPerDollar = map[string]float64{
		"COMPUTE": 220, "CONTAINER_ENGINE": 200, "DATABASE": 150, "BLOCK_STORAGE": 80,
		"OBJECT_STORAGE": 60, "NETWORK": 30, "API_GATEWAY": 20,
	}
	gridFactor = map[string]float64{
		"us-ashburn-1": 1.0, "us-phoenix-1": 0.9, "eu-frankfurt-1": 0.75, "ap-tokyo-1": 1.3,
	}
)

// WithCosts returns d with the cost of every compartment, service and
// region of its rows, from the first month the key has emissions through
// the month of now, to date (see costDrift): each month's emissions
// (power-based location-based, or spend-based for the services power-based
// calculations leave out) divided by a grams-per-dollar intensity. now
// becomes the fake's clock for cost queries (Dataset.Today). A key's cost
// depends only on the key, the month and its rows.
func (d Dataset) WithCosts(now time.Time) Dataset {
	now = now.UTC()
	current := provider.MonthOf(now)
	elapsed := float64(now.Sub(current.Start())) / float64(current.End().Sub(current.Start()))

	type key struct{ path, service, region string }
	emissions := make(map[key]map[provider.Month]float64)
	var lastPublished provider.Month
	for _, r := range d.Rows {
		lastPublished = max(lastPublished, r.Month)
		k := key{r.CompartmentPath, r.Service, r.Region}
		if emissions[k] == nil {
			emissions[k] = make(map[provider.Month]float64)
		}
		v := r.PowerLocation
		if r.SpendOnly {
			v = r.SpendMarket
		}
		emissions[k][r.Month] += v * gramsPerMetricTon
	}
	d.Costs = nil
	for _, k := range slices.SortedFunc(maps.Keys(emissions), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.path, b.path), cmp.Compare(a.service, b.service), cmp.Compare(a.region, b.region))
	}) {
		byMonth := emissions[k]
		id := k.path + "|" + k.service + "|" + k.region
		intensity := cmp.Or(gramsPerDollar[k.service], 50+150*rand.New(rand.NewPCG(costSeed(id), 0)).Float64())
		grid, ok := gridFactor[k.region]
		if !ok {
			grid = 0.5 + rand.New(rand.NewPCG(costSeed(id), 1)).Float64()
		}
		for m := slices.Min(slices.Collect(maps.Keys(byMonth))); m <= current; m++ {
			rng := rand.New(rand.NewPCG(costSeed(id), uint64(m)))
			grams, published := byMonth[m]
			if !published {
				// A key without emissions in a published month had no
				// usage; after the latest published month, the keys of
				// that month go on with their usage.
				latest, ok := byMonth[lastPublished]
				if m <= lastPublished || !ok {
					continue
				}
				grams = latest * (1 + usageNoise*(2*rng.Float64()-1))
			}
			cost := grams / (intensity * grid * math.Pow(1-costDrift, float64(m-costEpoch)) * (1 + costNoise*(2*rng.Float64()-1)))
			if m == current {
				cost *= elapsed
			}
			if cost = math.Round(cost*costStep) / costStep; cost > 0 {
				d.Costs = append(d.Costs, CostRow{CompartmentPath: k.path, Service: k.service, Region: k.region, Month: m, Cost: cost})
			}
		}
	}
	d.Today = now
	return d
}

// CostTotal is the cost of month m, in the dataset's currency: what an
// exporter reading the Usage API's COST queries must serve.
func (d Dataset) CostTotal(m provider.Month) float64 {
	var sum float64
	for _, c := range d.Costs {
		if c.Month == m {
			sum += c.Cost
		}
	}
	return sum
}

// CostMonths returns the months that have cost rows, oldest first.
func (d Dataset) CostMonths() []provider.Month {
	var ms []provider.Month
	for _, c := range d.Costs {
		ms = append(ms, c.Month)
	}
	slices.Sort(ms)
	return slices.Compact(ms)
}

func (d Dataset) today() time.Time {
	if d.Today.IsZero() {
		return time.Now().UTC()
	}
	return d.Today.UTC()
}

func costSeed(key string) uint64 { return seed("cost|" + key) }

// Wire shapes of RequestSummarizedUsages (oci-go-sdk usageapi:
// RequestSummarizedUsagesDetails, UsageAggregation, UsageSummary).
type wireCostRequest struct {
	TenantID          string          `json:"tenantId"`
	TimeUsageStarted  string          `json:"timeUsageStarted"`
	TimeUsageEnded    string          `json:"timeUsageEnded"`
	Granularity       string          `json:"granularity"`
	IsAggregateByTime *bool           `json:"isAggregateByTime"`
	Forecast          json.RawMessage `json:"forecast"`
	QueryType         string          `json:"queryType"`
	GroupBy           []string        `json:"groupBy"`
	GroupByTag        json.RawMessage `json:"groupByTag"`
	CompartmentDepth  *float64        `json:"compartmentDepth"`
	Filter            json.RawMessage `json:"filter"`
}

var costMembers = []string{"tenantId", "timeUsageStarted", "timeUsageEnded", "granularity", "isAggregateByTime", "forecast",
	"queryType", "groupBy", "groupByTag", "compartmentDepth", "filter"}

type wireCostItem struct {
	TimeUsageStarted string   `json:"timeUsageStarted"`
	TimeUsageEnded   string   `json:"timeUsageEnded"`
	ComputedAmount   *float64 `json:"computedAmount"`
	Currency         string   `json:"currency"`
	IsForecast       bool     `json:"isForecast"`
	TenantID         *string  `json:"tenantId"`
	TenantName       *string  `json:"tenantName"`
	CompartmentPath  *string  `json:"compartmentPath"`
	CompartmentName  *string  `json:"compartmentName"`
	Service          *string  `json:"service"`
	Region           *string  `json:"region"`
	// Tags holds the tag of a query grouped by one, with its value.
	Tags []wireTag `json:"tags,omitempty"`
}

type wireUsageAggregation struct {
	GroupBy []string       `json:"groupBy"`
	Items   []wireCostItem `json:"items"`
}

// costQuery is a decoded and checked cost request.
type costQuery struct {
	req        wireCostRequest
	tag        *wireTag       // groupByTag's, if any
	start, end provider.Month // end exclusive
	depth      int
	paging
}

// decodeCost parses and checks a summarized usage request as the fake
// reads the API: unknown members, query types other than COST, dates that
// are not the midnight UTC starting a month, an empty range, a range that
// starts after today or ends past the first day of next month, a
// forecast, filters, a groupByTag of more than one tag and a foreign page
// token are InvalidParameter.
func decodeCost(body []byte, params map[string][]string, today time.Time, pageLimit int) (*costQuery, *apiError) {
	var q costQuery
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil {
		return nil, invalid("Invalid request body: %v.", err)
	}
	for name := range members {
		if !slices.Contains(costMembers, name) {
			return nil, invalid("Unknown member %q in the request body.", name)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q.req); err != nil {
		return nil, invalid("Invalid request body: %v.", err)
	}
	start, err1 := time.Parse(time.RFC3339Nano, q.req.TimeUsageStarted)
	end, err2 := time.Parse(time.RFC3339Nano, q.req.TimeUsageEnded)
	current := provider.MonthOf(today)
	switch {
	case q.req.TenantID == "":
		return nil, invalid("tenantId is required.")
	case err1 != nil || err2 != nil:
		return nil, invalid("timeUsageStarted and timeUsageEnded must be RFC 3339 date-times.")
	case !monthStart(start) || !monthStart(end):
		return nil, invalid("timeUsageStarted and timeUsageEnded must be midnight UTC on the first day of a month for MONTHLY granularity.")
	case !start.Before(end):
		return nil, invalid("timeUsageEnded must be after timeUsageStarted.")
	case start.After(today) || end.After(current.End()):
		return nil, invalid("The usage period must not start after today nor end after the first day of next month.")
	case q.req.Granularity != "MONTHLY":
		return nil, invalid("granularity %q is not supported; the fake serves MONTHLY.", q.req.Granularity)
	case q.req.QueryType != "COST":
		return nil, invalid("queryType %q is not supported; the fake serves COST.", q.req.QueryType)
	case len(q.req.Forecast) > 0 && string(q.req.Forecast) != "null":
		return nil, invalid("forecast is not supported by the fake.")
	case len(q.req.Filter) > 0 && string(q.req.Filter) != "null":
		return nil, invalid("filter is not supported by the fake.")
	}
	var e *apiError
	if q.tag, e = decodeGroupByTag(q.req.GroupByTag); e != nil {
		return nil, e
	}
	q.start, q.end = provider.MonthOf(start), provider.MonthOf(end)
	for _, g := range q.req.GroupBy {
		if !slices.Contains(groupable, g) {
			return nil, invalid("groupBy %q is not supported; the fake groups by %s.", g, strings.Join(groupable, ", "))
		}
	}
	q.depth = 1 << 10
	if d := q.req.CompartmentDepth; d != nil {
		if *d != math.Trunc(*d) || *d < 1 || *d > 7 {
			return nil, invalid("compartmentDepth must be a whole number between 1 and 7.")
		}
		q.depth = int(*d)
	}
	var err *apiError
	if q.paging, err = decodePaging(params, body, pageLimit); err != nil {
		return nil, err
	}
	return &q, nil
}

// aggregateCost sums the dataset's cost rows of the query's months by its
// groupBy dimensions and the value of its groupByTag (and by month,
// unless isAggregateByTime), in a stable order.
func aggregateCost(ds *Dataset, q *costQuery) []wireCostItem {
	byTime := q.req.IsAggregateByTime != nil && *q.req.IsAggregateByTime
	currency := cmp.Or(ds.Currency, DefaultCurrency)
	type key struct {
		month provider.Month
		dims  string
	}
	sums := make(map[key]float64)
	items := make(map[key]wireCostItem)
	for _, c := range ds.Costs {
		if c.Month < q.start || c.Month >= q.end {
			continue
		}
		path := truncatePath(c.CompartmentPath, q.depth)
		name := path[strings.LastIndex(path, "/")+1:]
		it := wireCostItem{Currency: currency}
		var dims []string
		for _, g := range q.req.GroupBy {
			var v string
			switch g {
			case "service":
				v, it.Service = c.Service, &c.Service
			case "region":
				v, it.Region = c.Region, &c.Region
			case "compartmentPath":
				v, it.CompartmentPath = path, &path
			case "compartmentName":
				v, it.CompartmentName = name, &name
			case "tenantId":
				v, it.TenantID = ds.TenancyID, &ds.TenancyID
			case "tenantName":
				v, it.TenantName = ds.TenancyName, &ds.TenancyName
			}
			dims = append(dims, v)
		}
		if byTime {
			it.TimeUsageStarted, it.TimeUsageEnded = formatTime(q.start.Start()), formatTime(q.end.Start())
		} else {
			it.TimeUsageStarted, it.TimeUsageEnded = formatTime(c.Month.Start()), formatTime(c.Month.End())
		}
		for value, cost := range costParts(c, q.tag) {
			k := key{month: c.Month, dims: strings.Join(append(dims, value), "\x00")}
			if byTime {
				k.month = q.start
			}
			sums[k] += cost
			it.Tags = itemTags(q.tag, value)
			items[k] = it
		}
	}
	keys := slices.SortedFunc(maps.Keys(items), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.month, b.month), cmp.Compare(a.dims, b.dims))
	})
	out := make([]wireCostItem, 0, len(keys))
	for _, k := range keys {
		it := items[k]
		v := sums[k]
		it.ComputedAmount = &v
		out = append(out, it)
	}
	return out
}

// serveCost answers a checked, signed, permitted cost request.
func serveCost(w http.ResponseWriter, r *http.Request, body []byte, ds *Dataset, limit int) {
	q, e := decodeCost(body, r.URL.Query(), ds.today(), limit)
	if e != nil {
		e.write(w)
		return
	}
	if q.req.TenantID != ds.TenancyID {
		notFound.write(w)
		return
	}
	items := aggregateCost(ds, q)
	if q.offset > len(items) {
		invalid("The page token is invalid for this request.").write(w)
		return
	}
	end := min(q.offset+q.size, len(items))
	page := wireUsageAggregation{GroupBy: q.req.GroupBy, Items: items[q.offset:end]}
	if page.Items == nil {
		page.Items = []wireCostItem{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Opc-Request-Id", newRequestID())
	if end < len(items) {
		w.Header().Set("Opc-Next-Page", pageToken(q.hash, end))
	}
	_ = json.NewEncoder(w).Encode(page)
}

// IsCost reports whether r is a RequestSummarizedUsages request, for
// tests that select the cost requests.
func IsCost(r *http.Request) bool { return r.Method == http.MethodPost && r.URL.Path == CostPath }

// CostEmptyPage answers a cost query with a page that holds no item but
// links to another, a new one every time, as a broken service might
// forever.
func CostEmptyPage(w http.ResponseWriter, r *http.Request) {
	_, n, _ := parseToken(r.URL.Query().Get("page"))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Opc-Request-Id", newRequestID())
	w.Header().Set("Opc-Next-Page", pageToken("empty", n+1))
	_ = json.NewEncoder(w).Encode(wireUsageAggregation{Items: []wireCostItem{}})
}
