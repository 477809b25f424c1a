package ibmfake_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
)

const key = "fake-test-key-0123456789"

var (
	ent   = ibmfake.Entity{Type: ibmfake.TypeEnterprise, ID: strings.Repeat("e", 32), Name: "Sales"}
	group = ibmfake.Entity{Type: ibmfake.TypeAccountGroup, ID: strings.Repeat("g", 32), Name: "Sales-US", ParentID: ent.ID, ParentName: "Sales"}
	acc1  = ibmfake.Entity{Type: ibmfake.TypeAccount, ID: strings.Repeat("1", 32), Name: "Sales-Dallas", ParentID: group.ID, ParentName: "Sales-US"}
	acc2  = ibmfake.Entity{Type: ibmfake.TypeAccount, ID: strings.Repeat("2", 32), Name: "Sales-HQ", ParentID: ent.ID, ParentName: "Sales"}
	jan   = provider.NewMonth(2023, time.January)
)

func dataset() ibmfake.Dataset {
	return ibmfake.Dataset{
		EnterpriseID: ent.ID,
		Entities:     []ibmfake.Entity{ent, group, acc1, acc2},
		Rows: []ibmfake.Row{
			{AccountID: acc1.ID, Service: "Cloud Object Storage", Location: "Dallas", ResourceGroupID: "rg1", Month: jan, CarbonEmission: 100, EnergyConsumption: 10},
			{AccountID: acc1.ID, Service: "Cloud Object Storage", Location: "Dallas", ResourceGroupID: "rg2", Month: jan, CarbonEmission: 50, EnergyConsumption: 5},
			{AccountID: acc1.ID, Service: "Kubernetes Service", Location: "Washington DC", ResourceGroupID: "rg1", Month: jan + 1, CarbonEmission: 30, EnergyConsumption: 3},
			{AccountID: acc2.ID, Service: "Code Engine", Location: "Frankfurt", ResourceGroupID: "rg3", Month: jan + 1, CarbonEmission: 7, EnergyConsumption: 1},
			// A duplicate key is merged, as the API has one row per key.
			{AccountID: acc2.ID, Service: "Code Engine", Location: "Frankfurt", ResourceGroupID: "rg3", Month: jan + 1, CarbonEmission: 1, EnergyConsumption: 1},
		},
	}
}

type client struct {
	t     *testing.T
	ts    *httptest.Server
	fake  *ibmfake.Server
	token string
}

func newClient(t *testing.T, ds ibmfake.Dataset) *client {
	fake := ibmfake.NewServer(ds, key)
	ts := httptest.NewServer(fake)
	t.Cleanup(ts.Close)
	c := &client{t: t, ts: ts, fake: fake}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if code := c.postToken(key, &tok); code != 200 {
		t.Fatalf("token: %d", code)
	}
	c.token = tok.AccessToken
	return c
}

func (c *client) postToken(apikey string, out any) int {
	c.t.Helper()
	form := url.Values{"grant_type": {"urn:ibm:params:oauth:grant-type:apikey"}, "apikey": {apikey}}
	resp, err := c.ts.Client().PostForm(c.ts.URL+ibmfake.TokenPath, form)
	if err != nil {
		c.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(body), apikey) {
		c.t.Errorf("token response echoes the key: %s", body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		c.t.Fatalf("token body %q: %v", body, err)
	}
	return resp.StatusCode
}

func (c *client) get(query string, out any) int {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.ts.URL+ibmfake.CarbonPath+"?"+query, nil)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.ts.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.Header.Get("Content-Type") != "application/json" {
		c.t.Errorf("Content-Type = %q", resp.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		c.t.Fatalf("GET %s: %v", query, err)
	}
	return resp.StatusCode
}

type page struct {
	CarbonEmissions []map[string]any `json:"carbon_emissions"`
	TotalEmission   float64          `json:"total_emission"`
	Offset          int              `json:"offset"`
	Limit           int              `json:"limit"`
	TotalCount      int              `json:"total_count"`
	First, Last     *struct{ Href string }
	Previous, Next  *struct{ Href string }
}

func TestToken(t *testing.T) {
	c := newClient(t, dataset())
	var tok map[string]any
	if code := c.postToken(key, &tok); code != 200 {
		t.Fatalf("status %d", code)
	}
	if tok["token_type"] != "Bearer" || tok["expires_in"] != 3600.0 || tok["refresh_token"] == "" {
		t.Errorf("token = %v", tok)
	}
	parts := strings.Split(tok["access_token"].(string), ".")
	if len(parts) != 3 {
		t.Fatalf("access_token has %d segments", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct{ Iat, Exp int64 }
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	exp := int64(tok["expiration"].(float64))
	if claims.Exp != exp || claims.Exp-claims.Iat != 3600 || exp < time.Now().Unix()+3500 {
		t.Errorf("claims %+v, expiration %d", claims, exp)
	}

	var ierr map[string]any
	if code := c.postToken("wrong-key-value", &ierr); code != 400 || ierr["errorCode"] != "BXNIM0415E" ||
		ierr["errorMessage"] != "Provided API key could not be found." {
		t.Errorf("wrong key: %d %v", code, ierr)
	}
}

func TestAuthorization(t *testing.T) {
	c := newClient(t, dataset())
	tok := c.token
	tests := []struct {
		name, token, msg string
		expire           bool
	}{
		{"missing", "", "Token not specified.", false},
		{"unknown", "abc.def.ghi", "Invalid token.", false},
		{"revoked", tok, "Invalid token.", true},
	}
	for _, tt := range tests {
		if tt.expire {
			c.fake.ExpireTokens()
		}
		c.token = tt.token
		var body map[string]string
		if code := c.get("group_by=none", &body); code != 401 {
			t.Errorf("%s: status %d", tt.name, code)
		}
		want := map[string]string{"status": "401", "error": "Unauthorized", "message": tt.msg, "path": ibmfake.CarbonPath, "trace": ""}
		delete(body, "timestamp")
		if !reflect.DeepEqual(body, want) {
			t.Errorf("%s: body %v, want %v", tt.name, body, want)
		}
	}

	// A token past its expiry is rejected as expired.
	c2 := newClient(t, dataset())
	c2.fake.SetTokenTTL(-time.Second)
	var tk struct {
		AccessToken string `json:"access_token"`
	}
	c2.postToken(key, &tk)
	c2.token = tk.AccessToken
	var body map[string]string
	if code := c2.get("", &body); code != 401 || body["message"] != "Token expired." {
		t.Errorf("expired: %d %v", code, body)
	}
}

func TestGroupBy(t *testing.T) {
	c := newClient(t, dataset())
	base := "month=gte:2023-01&month=lte:2023-02&group_by="
	tests := []struct {
		query string
		want  []map[string]any
	}{
		{base + "none&enterprise_id=" + ent.ID, []map[string]any{
			{"account_id": acc1.ID, "carbon_emission": 100.0, "energy_consumption": 10.0, "service": "Cloud Object Storage", "location": "Dallas", "resource_group_id": "rg1",
				"month": map[string]any{"value": "2023-01", "min": "2023-01", "max": "2023-02"}, "entity_type": "enterprise", "entity_id": ent.ID, "entity_name": "Sales"},
			{"account_id": acc1.ID, "carbon_emission": 50.0, "energy_consumption": 5.0, "service": "Cloud Object Storage", "location": "Dallas", "resource_group_id": "rg2",
				"month": map[string]any{"value": "2023-01", "min": "2023-01", "max": "2023-02"}, "entity_type": "enterprise", "entity_id": ent.ID, "entity_name": "Sales"},
			{"account_id": acc1.ID, "carbon_emission": 30.0, "energy_consumption": 3.0, "service": "Kubernetes Service", "location": "Washington DC", "resource_group_id": "rg1",
				"month": map[string]any{"value": "2023-02", "min": "2023-01", "max": "2023-02"}, "entity_type": "enterprise", "entity_id": ent.ID, "entity_name": "Sales"},
			{"account_id": acc2.ID, "carbon_emission": 8.0, "energy_consumption": 2.0, "service": "Code Engine", "location": "Frankfurt", "resource_group_id": "rg3",
				"month": map[string]any{"value": "2023-02", "min": "2023-01", "max": "2023-02"}, "entity_type": "enterprise", "entity_id": ent.ID, "entity_name": "Sales"},
		}},
		{base + "month&enterprise_account_id=" + acc1.ID, []map[string]any{
			{"carbon_emission": 150.0, "energy_consumption": 15.0, "month": map[string]any{"value": "2023-01", "min": "2023-01", "max": "2023-02"},
				"group_by":    map[string]any{"type": "month", "value": "2023-01"},
				"entity_type": "account", "entity_id": acc1.ID, "entity_name": "Sales-Dallas", "parent_entity_id": group.ID, "parent_entity_name": "Sales-US"},
			{"carbon_emission": 30.0, "energy_consumption": 3.0, "month": map[string]any{"value": "2023-02", "min": "2023-01", "max": "2023-02"},
				"group_by":    map[string]any{"type": "month", "value": "2023-02"},
				"entity_type": "account", "entity_id": acc1.ID, "entity_name": "Sales-Dallas", "parent_entity_id": group.ID, "parent_entity_name": "Sales-US"},
		}},
		{base + "service&enterprise_group_id=" + group.ID, []map[string]any{
			{"account_id": acc1.ID, "carbon_emission": 150.0, "energy_consumption": 15.0, "service": "Cloud Object Storage",
				"month": map[string]any{"min": "2023-01", "max": "2023-01"}, "group_by": map[string]any{"type": "service", "value": "Cloud Object Storage"},
				"entity_type": "account_group", "entity_id": group.ID, "entity_name": "Sales-US", "parent_entity_id": ent.ID, "parent_entity_name": "Sales"},
			{"account_id": acc1.ID, "carbon_emission": 30.0, "energy_consumption": 3.0, "service": "Kubernetes Service",
				"month": map[string]any{"min": "2023-02", "max": "2023-02"}, "group_by": map[string]any{"type": "service", "value": "Kubernetes Service"},
				"entity_type": "account_group", "entity_id": group.ID, "entity_name": "Sales-US", "parent_entity_id": ent.ID, "parent_entity_name": "Sales"},
		}},
		{base + "location&locations=Dallas", []map[string]any{
			{"account_id": acc1.ID, "carbon_emission": 150.0, "energy_consumption": 15.0, "location": "Dallas",
				"power_utilization_efficiency": 1.42, "carbon_emission_factor": 0.38,
				"month": map[string]any{"min": "2023-01", "max": "2023-01"}, "group_by": map[string]any{"type": "location", "value": "Dallas"}},
		}},
		{base + "resource_group&services=Kubernetes%20Service,Code%20Engine", []map[string]any{
			{"account_id": acc1.ID, "carbon_emission": 30.0, "energy_consumption": 3.0, "resource_group_id": "rg1",
				"month": map[string]any{"min": "2023-02", "max": "2023-02"}, "group_by": map[string]any{"type": "resource_group", "value": "rg1"}},
			{"account_id": acc2.ID, "carbon_emission": 8.0, "energy_consumption": 2.0, "resource_group_id": "rg3",
				"month": map[string]any{"min": "2023-02", "max": "2023-02"}, "group_by": map[string]any{"type": "resource_group", "value": "rg3"}},
		}},
		{base + "enterprise_account&enterprise_id=" + ent.ID, []map[string]any{
			{"account_id": acc1.ID, "carbon_emission": 180.0, "energy_consumption": 18.0,
				"month": map[string]any{"min": "2023-01", "max": "2023-02"}, "group_by": map[string]any{"type": "enterprise_account", "value": acc1.ID},
				"entity_type": "account", "entity_id": acc1.ID, "entity_name": "Sales-Dallas", "parent_entity_id": group.ID, "parent_entity_name": "Sales-US"},
			{"account_id": acc2.ID, "carbon_emission": 8.0, "energy_consumption": 2.0,
				"month": map[string]any{"min": "2023-02", "max": "2023-02"}, "group_by": map[string]any{"type": "enterprise_account", "value": acc2.ID},
				"entity_type": "account", "entity_id": acc2.ID, "entity_name": "Sales-HQ", "parent_entity_id": ent.ID, "parent_entity_name": "Sales"},
		}},
		{base + "enterprise_group&enterprise_id=" + ent.ID, []map[string]any{
			{"carbon_emission": 8.0, "energy_consumption": 2.0,
				"month": map[string]any{"min": "2023-02", "max": "2023-02"}, "group_by": map[string]any{"type": "enterprise_group", "value": ent.ID},
				"entity_type": "enterprise", "entity_id": ent.ID, "entity_name": "Sales"},
			{"carbon_emission": 180.0, "energy_consumption": 18.0,
				"month": map[string]any{"min": "2023-01", "max": "2023-02"}, "group_by": map[string]any{"type": "enterprise_group", "value": group.ID},
				"entity_type": "account_group", "entity_id": group.ID, "entity_name": "Sales-US", "parent_entity_id": ent.ID, "parent_entity_name": "Sales"},
		}},
	}
	for _, tt := range tests {
		var p page
		if code := c.get(tt.query, &p); code != 200 {
			t.Errorf("%s: status %d", tt.query, code)
			continue
		}
		if !reflect.DeepEqual(p.CarbonEmissions, tt.want) {
			got, _ := json.MarshalIndent(p.CarbonEmissions, "", " ")
			t.Errorf("%s:\n got %s", tt.query, got)
		}
		var total float64
		for _, r := range tt.want {
			total += r["carbon_emission"].(float64)
		}
		if p.TotalEmission != total || p.TotalCount != len(tt.want) {
			t.Errorf("%s: total_emission %v total_count %d", tt.query, p.TotalEmission, p.TotalCount)
		}
	}
}

func TestPagingLinks(t *testing.T) {
	var ds ibmfake.Dataset
	for i := range 25 {
		ds.Rows = append(ds.Rows, ibmfake.Row{AccountID: "a", Service: string(rune('A' + i)), Location: "Dallas", Month: jan, CarbonEmission: 1})
	}
	c := newClient(t, ds)
	offset := 0
	pages := 0
	seen := 0
	for pages < 10 {
		var p page
		if code := c.get("group_by=none&month=gte:2023-01&month=lte:2023-01&limit=10&offset="+strconv.Itoa(offset), &p); code != 200 {
			t.Fatalf("status %d", code)
		}
		pages++
		seen += len(p.CarbonEmissions)
		if p.TotalCount != 25 || p.TotalEmission != 25 || p.Limit != 10 || p.Offset != offset {
			t.Errorf("page %d: %+v", pages, p)
		}
		if !strings.HasPrefix(p.First.Href, c.ts.URL+ibmfake.CarbonPath+"?") || !strings.Contains(p.Last.Href, "offset=20") {
			t.Errorf("first/last = %s %s", p.First.Href, p.Last.Href)
		}
		if (offset == 0) != (p.Previous == nil) {
			t.Errorf("page %d: previous = %v", pages, p.Previous)
		}
		if p.Next == nil {
			break
		}
		u, err := url.Parse(p.Next.Href)
		if err != nil || u.Query().Get("group_by") != "none" || len(u.Query()["month"]) != 2 {
			t.Fatalf("next = %q", p.Next.Href)
		}
		offset, _ = strconv.Atoi(u.Query().Get("offset"))
	}
	if pages != 3 || seen != 25 {
		t.Errorf("pages %d rows %d", pages, seen)
	}
	if c.fake.Requests(ibmfake.CarbonPath) != 3 || c.fake.Requests(ibmfake.TokenPath) != 1 {
		t.Errorf("request counts %d %d", c.fake.Requests(ibmfake.CarbonPath), c.fake.Requests(ibmfake.TokenPath))
	}
}

func TestBadRequests(t *testing.T) {
	c := newClient(t, dataset())
	std := newClient(t, ibmfake.Dataset{Rows: dataset().Rows})
	tests := []struct {
		c      *client
		query  string
		status int
	}{
		{c, "month=gte:2023-1", 400},
		{c, "month=between:2023-01", 400},
		{c, "month=gte:2023-01&month=gte:2023-02", 400},
		{c, "month=gte:2023-01,lte:2023-02,lte:2023-03", 400},
		{c, "group_by=account", 400},
		{c, "limit=0", 400},
		{c, "limit=101", 400},
		{c, "offset=-1", 400},
		{c, "enterprise_id=short", 400},
		{c, "enterprise_id=" + ent.ID + "&enterprise_account_id=" + acc1.ID, 400},
		{c, "group_by=resource_group&enterprise_id=" + ent.ID, 400},
		{c, "enterprise_id=" + strings.Repeat("f", 32), 403},
		{c, "enterprise_group_id=" + acc1.ID, 403},
		{std, "group_by=enterprise_account", 400},
		{std, "enterprise_id=" + ent.ID, 403},
		{c, "month=gte:2023-01,lte:2023-02&limit=100&offset=0", 200},
	}
	for _, tt := range tests {
		var body map[string]any
		if code := tt.c.get(tt.query, &body); code != tt.status {
			t.Errorf("%s: status %d, want %d (%v)", tt.query, code, tt.status, body)
		}
		if tt.status != 200 && (body["message"] == "" || body["status"] != strconv.Itoa(tt.status)) {
			t.Errorf("%s: body %v", tt.query, body)
		}
	}
}

func TestInject(t *testing.T) {
	c := newClient(t, dataset())
	c.fake.Inject(ibmfake.CarbonPath, ibmfake.Fault{Status: 429, Header: http.Header{"Retry-After": {"3"}}, Body: `{"message":"slow down"}`, Times: 2})
	c.fake.Inject(ibmfake.CarbonPath, ibmfake.Fault{Body: `{}`})
	for i, want := range []int{429, 429, 500, 200} {
		req, _ := http.NewRequest(http.MethodGet, c.ts.URL+ibmfake.CarbonPath, nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := c.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("request %d: %d, want %d", i, resp.StatusCode, want)
		}
		if want == 429 && resp.Header.Get("Retry-After") != "3" {
			t.Errorf("request %d: Retry-After %q", i, resp.Header.Get("Retry-After"))
		}
	}
	if n := c.fake.Requests(ibmfake.CarbonPath); n != 4 {
		t.Errorf("Requests = %d", n)
	}
}

func TestDemo(t *testing.T) {
	now := time.Date(2025, time.March, 10, 0, 0, 0, 0, time.UTC)
	ds := ibmfake.Demo(now)
	if !reflect.DeepEqual(ds, ibmfake.Demo(now)) {
		t.Fatal("Demo is not deterministic")
	}
	// 2025-02 is published on 2025-03-17, so on 2025-03-10 the latest is
	// 2025-01.
	last := ibmfake.LatestPublished(now)
	if want := provider.NewMonth(2025, time.January); last != want {
		t.Errorf("LatestPublished = %s, want %s", last, want)
	}
	if got := ibmfake.LatestPublished(time.Date(2025, time.March, 17, 0, 0, 0, 0, time.UTC)); got != last+1 {
		t.Errorf("LatestPublished on publication day = %s", got)
	}

	idOK := func(id string) bool {
		if len(id) != 32 {
			return false
		}
		for _, r := range id {
			if !strings.ContainsRune("0123456789abcdef", r) {
				return false
			}
		}
		return true
	}
	types := map[string]int{}
	accounts := map[string]bool{}
	for _, e := range ds.Entities {
		types[e.Type]++
		if !idOK(e.ID) {
			t.Errorf("entity id %q", e.ID)
		}
		if e.Type == ibmfake.TypeAccount {
			accounts[e.ID] = true
		}
	}
	if types[ibmfake.TypeEnterprise] != 1 || types[ibmfake.TypeAccountGroup] != 2 || types[ibmfake.TypeAccount] != 5 || !idOK(ds.EnterpriseID) {
		t.Errorf("entities %v", types)
	}

	perMonth := map[provider.Month]int{}
	type ask struct {
		account, service, location string
		m                          provider.Month
	}
	sums := map[ask]float64{}
	services, locations := map[string]bool{}, map[string]bool{}
	for _, r := range ds.Rows {
		perMonth[r.Month]++
		sums[ask{r.AccountID, r.Service, r.Location, r.Month}] += r.CarbonEmission
		services[r.Service], locations[r.Location] = true, true
		if !accounts[r.AccountID] || r.ResourceGroupID == "" || r.CarbonEmission <= 0 || r.EnergyConsumption <= r.CarbonEmission {
			t.Errorf("row %+v", r)
		}
	}
	if len(perMonth) != ibmfake.DemoMonths {
		t.Errorf("months = %d", len(perMonth))
	}
	for m, n := range perMonth {
		if m < last-ibmfake.DemoMonths+1 || m > last || n <= 100 || n > 400 {
			t.Errorf("month %s: %d rows", m, n)
		}
	}
	if len(services) < 6 || len(services) > 8 || len(locations) != 6 {
		t.Errorf("services %d locations %d", len(services), len(locations))
	}
	for k, v := range sums {
		if v < 1e3 || v > 1e5 {
			t.Errorf("%+v: %v g", k, v)
		}
	}
	// Smooth: no account/service/location changes by more than 15% from
	// one month to the next.
	for k, v := range sums {
		prev := k
		prev.m--
		if p, ok := sums[prev]; ok && (v/p > 1.15 || p/v > 1.15) {
			t.Errorf("%+v: %v after %v", k, v, p)
		}
	}
	// History does not move as now advances.
	later := ibmfake.Demo(now.AddDate(0, 2, 0))
	c1, e1 := ds.Total(last)
	c2, e2 := later.Total(last)
	if c1 != c2 || e1 != e2 || c1 == 0 {
		t.Errorf("month %s: %v/%v then %v/%v", last, c1, e1, c2, e2)
	}
}

func TestScale(t *testing.T) {
	now := time.Date(2025, time.March, 10, 0, 0, 0, 0, time.UTC)
	last := ibmfake.LatestPublished(now)
	tests := []struct {
		accounts int
		rows     int
		records  int
	}{
		{0, 0, 0},
		{1, 224, 210},
		{3, 3 * 224, 3 * 210},
		{250, 56000, 52500},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.accounts), func(t *testing.T) {
			ds := ibmfake.Scale(now, tt.accounts)
			if !reflect.DeepEqual(ds, ibmfake.Scale(now, tt.accounts)) {
				t.Fatal("Scale is not deterministic")
			}
			types := map[string]int{}
			accounts := map[string]bool{}
			for _, e := range ds.Entities {
				types[e.Type]++
				if e.Type == ibmfake.TypeAccount {
					accounts[e.ID] = true
				}
			}
			if types[ibmfake.TypeEnterprise] != 1 || types[ibmfake.TypeAccountGroup] != 2 || types[ibmfake.TypeAccount] != tt.accounts {
				t.Errorf("entities %v", types)
			}
			type rowKey struct {
				account, service, location, rg string
				m                              provider.Month
			}
			type recKey struct {
				account, service, location string
				m                          provider.Month
			}
			rows, records := map[rowKey]bool{}, map[recKey]bool{}
			for _, r := range ds.Rows {
				rows[rowKey{r.AccountID, r.Service, r.Location, r.ResourceGroupID, r.Month}] = true
				records[recKey{r.AccountID, r.Service, r.Location, r.Month}] = true
				if !accounts[r.AccountID] || r.Month < last-ibmfake.ScaleMonths+1 || r.Month > last ||
					r.CarbonEmission <= 0 || r.EnergyConsumption <= r.CarbonEmission {
					t.Fatalf("row %+v", r)
				}
			}
			// Distinct keys: the fake would merge duplicates, and the
			// documented counts would be wrong.
			if len(ds.Rows) != tt.rows || len(rows) != tt.rows || len(records) != tt.records {
				t.Errorf("rows %d (%d distinct), records %d; want %d rows, %d records",
					len(ds.Rows), len(rows), len(records), tt.rows, tt.records)
			}
		})
	}

	// An account's figures do not depend on how many accounts there are,
	// nor a month's on now.
	small, big := ibmfake.Scale(now, 2), ibmfake.Scale(now, 3)
	if !reflect.DeepEqual(small.Rows, big.Rows[:len(small.Rows)]) {
		t.Error("the first accounts differ between Scale(2) and Scale(3)")
	}
	long := ibmfake.ScaleOver(now, 2, 40)
	if len(long.Rows) != 40*len(small.Rows)/ibmfake.ScaleMonths {
		t.Errorf("ScaleOver(2, 40 months): %d rows", len(long.Rows))
	}
	recent := slices.DeleteFunc(slices.Clone(long.Rows), func(r ibmfake.Row) bool { return r.Month <= last-ibmfake.ScaleMonths })
	if !reflect.DeepEqual(small.Rows, recent) {
		t.Error("the months of Scale differ in ScaleOver over more months")
	}
	c1, e1 := small.Total(last)
	c2, e2 := ibmfake.Scale(now.AddDate(0, 2, 0), 2).Total(last)
	if c1 != c2 || e1 != e2 || c1 == 0 {
		t.Errorf("month %s: %v/%v then %v/%v", last, c1, e1, c2, e2)
	}
}

func TestLatencyAndInFlight(t *testing.T) {
	c := newClient(t, dataset())
	const latency = 50 * time.Millisecond
	c.fake.SetLatency(latency)
	if n := c.fake.MaxInFlight(); n != 0 {
		t.Errorf("MaxInFlight before any carbon request = %d", n)
	}
	start := time.Now()
	var p page
	if code := c.get("month=gte:2023-01&group_by=none", &p); code != 200 || p.TotalCount != 4 {
		t.Fatalf("status %d, %+v", code, p)
	}
	if d := time.Since(start); d < latency {
		t.Errorf("answer after %v, want at least %v", d, latency)
	}
	if n := c.fake.MaxInFlight(); n != 1 {
		t.Errorf("MaxInFlight after one request = %d, want 1", n)
	}

	// Requests held by a long latency are all in flight at once; their
	// client giving up frees them.
	c.fake.SetLatency(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.ts.URL+ibmfake.CarbonPath+"?group_by=none", nil)
			req.Header.Set("Authorization", "Bearer "+c.token)
			if resp, err := c.ts.Client().Do(req); err == nil {
				_ = resp.Body.Close()
				t.Errorf("answered despite a minute's latency: %d", resp.StatusCode)
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.fake.MaxInFlight() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	if n := c.fake.MaxInFlight(); n != 3 {
		t.Errorf("MaxInFlight with 3 requests held = %d, want 3", n)
	}
}
