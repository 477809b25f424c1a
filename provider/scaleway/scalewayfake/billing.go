package scalewayfake

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"maps"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// The Billing API's consumptions (billing/v2beta1 ListConsumptions) as the
// fake serves them: per billing period (a calendar month, the month in
// progress to date), one line per project and SKU with its invoice
// category, product name and value in euros, paged by page and
// page_size, with the total count of lines. Lines carry no region.
const (
	// ConsumptionsPath is the operation's path, as the SDK builds it.
	ConsumptionsPath = "/billing/v2beta1/consumptions"
	// OpConsumptions names the operation in Requests, Queries and Inject.
	OpConsumptions = "ListConsumptions"
	// BillingPermissionSet is what reads consumption, by the fake's
	// reading of Scaleway's IAM reference.
	BillingPermissionSet = "BillingReadOnly"
)

// The fake's own model of what Scaleway charges for what it emits, kept
// apart from the scaleway provider: a SKU's cost in a month is its
// impact divided by grams of CO2e per euro that depend on its product
// category and region, drift slowly from month to month and carry seeded
// noise. Products the footprint does not cover (Cockpit) are billed too.
// The exporter converts euros at a fixed rate, usdPerEUR.
const (
	usdPerEUR              = 1.08
	defaultGramsPerEUR     = 150.0
	intensityDriftPerMonth = -0.003
	defaultPageSize        = 20
	maxPageSize            = 100
)

// gramsPerEUR: grams of CO2e (life cycle, as the footprint counts them)
// per euro billed, per product category. Bare metal and instances carry
// the most hardware per euro; managed and AI services the least.
var gramsPerEUR = map[string]float64{
	"instances":                    240,
	"elastic_metal":                310,
	"dedibox":                      330,
	"apple_silicon":                190,
	"block_storage":                120,
	"object_storage":               95,
	"load_balancer":                60,
	"kubernetes":                   70,
	"managed_relational_databases": 85,
	"managed_mongodb":              80,
	"managed_redis":                90,
	"managed_inference":            140,
	"generative_apis":              55,
	"serverless_functions":         45,
	"serverless_containers":        50,
	"serverless_jobs":              50,
}

// regionIntensity scales intensities by the region's electricity: Paris
// and Amsterdam run on cleaner grids than Warsaw.
var regionIntensity = map[string]float64{"fr-par": 0.8, "nl-ams": 1.25, "pl-waw": 2.1}

// billedAs is how the invoice names a footprint product category: its
// category and product name.
var billedAs = map[string][2]string{
	"instances":                    {"Compute", "Instances"},
	"elastic_metal":                {"BareMetal", "Elastic Metal"},
	"dedibox":                      {"BareMetal", "Dedibox"},
	"apple_silicon":                {"BareMetal", "Apple Silicon"},
	"block_storage":                {"Storage", "Block Storage"},
	"object_storage":               {"Storage", "Object Storage"},
	"load_balancer":                {"Network", "Load Balancer"},
	"kubernetes":                   {"Containers", "Kubernetes Kapsule"},
	"managed_relational_databases": {"Managed Databases", "Managed Database for PostgreSQL and MySQL"},
	"managed_mongodb":              {"Managed Databases", "Managed MongoDB"},
	"managed_redis":                {"Managed Databases", "Managed Database for Redis"},
	"managed_inference":            {"Managed Services", "Managed Inference"},
	"generative_apis":              {"Managed Services", "Generative APIs"},
	"serverless_functions":         {"Serverless", "Serverless Functions"},
	"serverless_containers":        {"Serverless", "Serverless Containers"},
	"serverless_jobs":              {"Serverless", "Serverless Jobs"},
}

// Consumption is one line of a billing period: a project's spend on one
// SKU.
type Consumption struct {
	Project      string
	Month        provider.Month
	CategoryName string
	ProductName  string
	SKU          string
	ResourceName string
	Unit         string
	Quantity     string
	// EUR is the value in euros, to the nano, as the API's Money holds it.
	EUR float64
	// Service is what the fake expects the line to be labelled: the
	// footprint's product category of the SKU it bills ("unknown" for a
	// SKU the footprint gives none), or, for a product the footprint does
	// not cover, its name in snake case.
	Service string
}

// CostKey is a project × service, the grain a cost record can have: the
// Billing API gives no region.
type CostKey struct{ Project, Service string }

// WithConsumptions returns d with Consumptions derived from its SKUs:
// every SKU of every month (the month in progress as far as its SKUs go)
// billed at its product category's and region's intensity, and a Cockpit
// line per project and month, which the footprint does not cover.
func (d Dataset) WithConsumptions() Dataset {
	d.Consumptions = nil
	projects := map[provider.Month]map[string]bool{}
	for _, s := range d.SKUs {
		kg := math.Abs(s.KgCO2e)
		cat := s.ProductCategory
		g := cmp.Or(gramsPerEUR[cat], defaultGramsPerEUR) * cmp.Or(regionIntensity[s.Region], 1.0) *
			math.Pow(1+intensityDriftPerMonth, float64(s.Month-FirstMonth)) * costNoise(s.Project+"/"+s.ID, s.Month, 0.06)
		eur := nanos(kg * gramsPerKilogram / g)
		if eur == 0 {
			continue
		}
		bill := billedAs[cat]
		service := cat
		if cat == "" {
			bill, service = [2]string{"Compute", ""}, "unknown"
		}
		d.Consumptions = append(d.Consumptions, Consumption{
			Project: s.Project, Month: s.Month, CategoryName: bill[0], ProductName: bill[1],
			SKU: "/" + strings.ToLower(strings.ReplaceAll(bill[0], " ", "-")) + "/" + s.ID, ResourceName: s.ID,
			Unit: "hour", Quantity: strconv.FormatFloat(math.Round(eur/0.0137*1000)/1000, 'f', -1, 64), EUR: eur, Service: service,
		})
		if projects[s.Month] == nil {
			projects[s.Month] = map[string]bool{}
		}
		projects[s.Month][s.Project] = true
	}
	for _, m := range slices.Sorted(maps.Keys(projects)) {
		for _, p := range slices.Sorted(maps.Keys(projects[m])) {
			d.Consumptions = append(d.Consumptions, Consumption{
				Project: p, Month: m, CategoryName: "Observability", ProductName: "Cockpit", SKU: "/observability/cockpit/metrics",
				ResourceName: "cockpit", Unit: "million samples", Quantity: "12.5", EUR: nanos(2.5 * costNoise(p+"/cockpit", m, 0.3)),
				Service: "cockpit",
			})
		}
	}
	return d
}

// nanos rounds euros to the nano, as Money holds them.
func nanos(eur float64) float64 { return math.Round(eur*1e9) / 1e9 }

// costNoise returns a factor within 1±spread that depends only on key
// and m.
func costNoise(key string, m provider.Month, spread float64) float64 {
	h := sha256.Sum256([]byte("cloudcarbon-fake/scaleway/cost|" + key + "|" + m.String()))
	u := float64(binary.LittleEndian.Uint64(h[:8])>>11) / (1 << 53)
	return 1 - spread + 2*spread*u
}

// CostTotal returns month m's consumption in US dollars, at the fixed
// rate the exporter converts at; with projects, only theirs: what an
// exact client must report.
func (d Dataset) CostTotal(m provider.Month, projects ...string) float64 {
	var sum float64
	for _, c := range d.Consumptions {
		if c.Month == m && (len(projects) == 0 || slices.Contains(projects, c.Project)) {
			sum += c.EUR * usdPerEUR
		}
	}
	return sum
}

// CostTotals returns month m's consumption in US dollars per project and
// service.
func (d Dataset) CostTotals(m provider.Month) map[CostKey]float64 {
	out := map[CostKey]float64{}
	for _, c := range d.Consumptions {
		if c.Month == m {
			out[CostKey{c.Project, c.Service}] += c.EUR * usdPerEUR
		}
	}
	return out
}

// The API's JSON of a consumption line.
type (
	money struct {
		CurrencyCode string `json:"currency_code"`
		Units        int64  `json:"units"`
		Nanos        int32  `json:"nanos"`
	}
	consumptionJSON struct {
		Value            money  `json:"value"`
		ProductName      string `json:"product_name"`
		ResourceName     string `json:"resource_name"`
		SKU              string `json:"sku"`
		ProjectID        string `json:"project_id"`
		CategoryName     string `json:"category_name"`
		Unit             string `json:"unit"`
		BilledQuantity   string `json:"billed_quantity"`
		ConsumerID       string `json:"consumer_id"`
		ProjectName      string `json:"project_name"`
		OrganizationName string `json:"organization_name"`
	}
	consumptionsResponse struct {
		Consumptions              []consumptionJSON `json:"consumptions"`
		TotalCount                uint64            `json:"total_count"`
		TotalDiscountUntaxedValue float64           `json:"total_discount_untaxed_value"`
		UpdatedAt                 string            `json:"updated_at"`
	}
)

func toMoney(eur float64) money {
	units := math.Trunc(eur)
	return money{CurrencyCode: "EUR", Units: int64(units), Nanos: int32(math.Round((eur - units) * 1e9))}
}

var billingPeriodRE = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])$`)

// consumptionOrders are the API's orders (the SDK's ListConsumptionsRequestOrderBy).
var consumptionOrders = []string{"updated_at_desc", "updated_at_asc", "category_name_desc", "category_name_asc"}

// serveConsumptions answers ListConsumptions, after authentication.
func (s *Server) serveConsumptions(w http.ResponseWriter, q url.Values, ds Dataset, billingDenied bool, pageMax int, now time.Time) {
	org, project := q.Get("organization_id"), q.Get("project_id")
	switch {
	case (org == "") == (project == ""):
		invalid(w, "organization_id", "constraint", "precisely one of organization_id, project_id must be set")
		return
	case org != "" && !uuidRE.MatchString(org):
		invalid(w, "organization_id", "format", "must be a UUID")
		return
	case project != "" && !uuidRE.MatchString(project):
		invalid(w, "project_id", "format", "must be a UUID")
		return
	case billingDenied || org != "" && org != ds.OrganizationID ||
		project != "" && !slices.ContainsFunc(ds.Consumptions, func(c Consumption) bool { return c.Project == project }):
		writeJSON(w, http.StatusForbidden, billingPermissionsDenied())
		return
	}
	period := provider.MonthOf(now)
	if v := q.Get("billing_period"); v != "" {
		if !billingPeriodRE.MatchString(v) {
			invalid(w, "billing_period", "format", "must be YYYY-MM")
			return
		}
		t, _ := time.Parse("2006-01", v)
		period = provider.MonthOf(t)
	}
	page, size := 1, defaultPageSize
	for _, p := range []struct {
		name     string
		dst      *int
		min, max int
	}{{"page", &page, 1, math.MaxInt32}, {"page_size", &size, 1, maxPageSize}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < p.min || n > p.max {
				invalid(w, p.name, "constraint", "out of range")
				return
			}
			*p.dst = n
		}
	}
	order := cmp.Or(q.Get("order_by"), "updated_at_desc")
	if !slices.Contains(consumptionOrders, order) {
		invalid(w, "order_by", "format", "unknown value")
		return
	}
	if pageMax > 0 {
		size = min(size, pageMax)
	}
	var lines []Consumption
	for _, c := range ds.Consumptions {
		if c.Month == period && (project == "" || c.Project == project) &&
			(q.Get("category_name") == "" || c.CategoryName == q.Get("category_name")) {
			lines = append(lines, c)
		}
	}
	// Every line of a period is updated at once, so the updated_at orders
	// are the stable order of lines; the category orders break ties on it.
	slices.SortStableFunc(lines, func(a, b Consumption) int {
		return cmp.Or(cmp.Compare(a.Project, b.Project), cmp.Compare(a.SKU, b.SKU))
	})
	switch order {
	case "category_name_asc":
		slices.SortStableFunc(lines, func(a, b Consumption) int { return cmp.Compare(a.CategoryName, b.CategoryName) })
	case "category_name_desc":
		slices.SortStableFunc(lines, func(a, b Consumption) int { return cmp.Compare(b.CategoryName, a.CategoryName) })
	case "updated_at_asc":
		slices.Reverse(lines)
	}
	resp := consumptionsResponse{Consumptions: []consumptionJSON{}, TotalCount: uint64(len(lines)),
		UpdatedAt: minTime(now, period.End()).UTC().Format(time.RFC3339)}
	from := min((page-1)*size, len(lines))
	for _, c := range lines[from:min(from+size, len(lines))] {
		resp.Consumptions = append(resp.Consumptions, consumptionJSON{
			Value: toMoney(c.EUR), ProductName: c.ProductName, ResourceName: c.ResourceName, SKU: c.SKU, ProjectID: c.Project,
			CategoryName: c.CategoryName, Unit: c.Unit, BilledQuantity: c.Quantity, ConsumerID: ds.OrganizationID,
			ProjectName: projectName(c.Project), OrganizationName: "Demo organization",
		})
	}
	writeJSON(w, http.StatusOK, resp)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// projectName is a project's display name: the fake knows its own.
func projectName(id string) string {
	switch id {
	case DemoProjectDefault:
		return "default"
	case DemoProjectWeb:
		return "web-shop"
	case DemoProjectData:
		return "data-platform"
	case SampleProjectApp:
		return "app"
	case SampleProjectData:
		return "data"
	}
	return "project-" + id[:min(8, len(id))]
}

// billingPermissionsDenied is Scaleway's answer to a key whose principal
// may not read billing.
func billingPermissionsDenied() map[string]any {
	return map[string]any{
		"details": []map[string]string{{"action": "read", "resource": "billing_consumption"}},
		"message": "insufficient permissions", "type": "permissions_denied"}
}

// BillingErrorFault is Scaleway's error answer with status to a billing
// request: ErrorFault's, but for 403, which names billing.
func BillingErrorFault(status int) Fault {
	if status != http.StatusForbidden {
		return ErrorFault(status)
	}
	text, _ := json.Marshal(billingPermissionsDenied())
	return Fault{Status: status, Body: string(text)}
}

// ConsumptionsEmptyPage answers ListConsumptions with a page that holds no
// line while its total count says more lines follow, as a broken server
// might forever.
func ConsumptionsEmptyPage(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, consumptionsResponse{Consumptions: []consumptionJSON{}, TotalCount: 1 << 30,
		UpdatedAt: time.Now().UTC().Format(time.RFC3339)})
}
