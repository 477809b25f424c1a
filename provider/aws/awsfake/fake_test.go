package awsfake_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/aws/awsfake"
)

var (
	keys = awsfake.Credentials{AccessKeyID: "AKIAFAKETEST00000001", SecretAccessKey: "fake/secret+key"}
	jan  = provider.NewMonth(2025, time.January)
)

func dataset() awsfake.Dataset {
	return awsfake.Dataset{
		OrganizationID: "o-abc", ManagementAccount: "111111111111",
		Accounts: []awsfake.Account{{ID: "111111111111", Name: "m"}, {ID: "222222222222", Name: "a"}, {ID: "333333333333", Name: "b"}},
		Rows: []awsfake.Row{
			{Account: "111111111111", Region: "us-east-1", Service: "AmazonEC2", Month: jan, Scope1: 1, Scope2LBM: 2, Scope2MBM: 0.5, Scope3LBM: 3, Scope3MBM: 3.5},
			{Account: "222222222222", Region: "us-east-1", Service: "AmazonEC2", Month: jan, Scope1: 1, Scope2LBM: 2, Scope2MBM: 0.5, Scope3LBM: 3, Scope3MBM: 3.5},
			{Account: "222222222222", Region: "global", Service: "AmazonCloudFront", Month: jan + 1, Scope1: 0.1, Scope2LBM: 0.2, Scope2MBM: 0.1, Scope3LBM: 0.3, Scope3MBM: 0.3},
		},
		Water:         []awsfake.WaterRow{{Account: "111111111111", Region: "us-east-1", Service: "AmazonEC2", Year: 2025, Withdrawals: 4}},
		ModelVersions: map[provider.Month]string{jan + 1: "v3.1.0"},
	}
}

type client struct {
	t    *testing.T
	ts   *httptest.Server
	fake *awsfake.Server
}

func newClient(t *testing.T) *client {
	fake := awsfake.NewServer(dataset(), keys)
	ts := httptest.NewServer(fake)
	t.Cleanup(ts.Close)
	return &client{t: t, ts: ts, fake: fake}
}

// signed builds a request signed as the SDK signs, with headers added.
func (c *client) signed(path, service string, body []byte, creds awsfake.Credentials, header http.Header) *http.Request {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.ts.URL+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range header {
		req.Header[k] = vs
	}
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken},
		req, hex.EncodeToString(sum[:]), service, "us-east-1", time.Now())
	if err != nil {
		c.t.Fatal(err)
	}
	return req
}

func (c *client) do(req *http.Request, out any) (int, http.Header, string) {
	c.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s: %v", b, err)
		}
	}
	return resp.StatusCode, resp.Header, string(b)
}

type page struct {
	Results []struct {
		DimensionsValues map[string]string
		EmissionsValues  map[string]struct {
			Unit  string
			Value float64
		}
		AllocationValues map[string]struct {
			Unit  string
			Value float64
		}
		ModelVersion string
		TimePeriod   struct{ Start, End string }
	}
	NextToken string
}

func TestCarbon(t *testing.T) {
	c := newClient(t)
	body := `{"TimePeriod":{"Start":"2025-01-01T00:00:00.000Z","End":"2025-03-01T00:00:00Z"},"GroupBy":["REGION"],` +
		`"EmissionsTypes":["TOTAL_LBM_CARBON_EMISSIONS","TOTAL_SCOPE_2_MBM_CARBON_EMISSIONS"]}`
	var p page
	if code, _, b := c.do(c.signed(awsfake.CarbonPath, "sustainability", []byte(body), keys, nil), &p); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	if len(p.Results) != 2 || p.NextToken != "" {
		t.Fatalf("%+v", p)
	}
	r := p.Results[0]
	if r.DimensionsValues["REGION"] != "us-east-1" || len(r.DimensionsValues) != 1 || r.ModelVersion != awsfake.DefaultModelVersion ||
		r.TimePeriod.Start != "2025-01-01T00:00:00Z" || r.TimePeriod.End != "2025-02-01T00:00:00Z" {
		t.Errorf("first result %+v", r)
	}
	if v := r.EmissionsValues["TOTAL_LBM_CARBON_EMISSIONS"]; v.Unit != "MTCO2e" || v.Value != 12 || len(r.EmissionsValues) != 2 {
		t.Errorf("values %+v; want the two asked for, the total 12 MTCO2e", r.EmissionsValues)
	}
	if p.Results[1].ModelVersion != "v3.1.0" || p.Results[1].DimensionsValues["REGION"] != "global" {
		t.Errorf("second result %+v", p.Results[1])
	}
	if lbm, mbm := dataset().Totals(jan); lbm != 12 || mbm != 10 {
		t.Errorf("totals %g %g", lbm, mbm)
	}
}

func TestPagingTokens(t *testing.T) {
	c := newClient(t)
	q := func(token string, groupBy string) string {
		b := `{"TimePeriod":{"Start":"2025-01-01T00:00:00Z","End":"2025-03-01T00:00:00Z"},"GroupBy":[` + groupBy + `],"MaxResults":1`
		if token != "" {
			b += `,"NextToken":"` + token + `"`
		}
		return b + "}"
	}
	var seen []string
	token := ""
	for {
		var p page
		if code, _, b := c.do(c.signed(awsfake.CarbonPath, "sustainability", []byte(q(token, `"USAGE_ACCOUNT_ID","REGION"`)), keys, nil), &p); code != 200 {
			t.Fatalf("%d %s", code, b)
		}
		for _, r := range p.Results {
			seen = append(seen, r.DimensionsValues["USAGE_ACCOUNT_ID"]+"/"+r.DimensionsValues["REGION"])
		}
		if token = p.NextToken; token == "" {
			break
		}
		// A token belongs to its query.
		if code, _, _ := c.do(c.signed(awsfake.CarbonPath, "sustainability", []byte(q(token, `"SERVICE"`)), keys, nil), nil); code != 400 {
			t.Errorf("a token of another query: %d, want 400", code)
		}
	}
	if len(seen) != 3 {
		t.Errorf("pages gave %v, want 3 results", seen)
	}
}

func TestValidation(t *testing.T) {
	c := newClient(t)
	for _, body := range []string{
		`{}`,
		`{"TimePeriod":{"Start":"2025-03-01T00:00:00Z","End":"2025-01-01T00:00:00Z"}}`,
		`{"TimePeriod":{"Start":"2025-01-01","End":"2025-03-01T00:00:00Z"}}`,
		`{"TimePeriod":{"Start":"2025-01-01T00:00:00Z","End":"2025-03-01T00:00:00Z"},"Granularity":"DAILY"}`,
		`{"TimePeriod":{"Start":"2025-01-01T00:00:00Z","End":"2025-03-01T00:00:00Z"},"MaxResults":5001}`,
		`{"TimePeriod":{"Start":"2025-01-01T00:00:00Z","End":"2025-03-01T00:00:00Z"},"GroupBy":["ACCOUNT"]}`,
		`{"TimePeriod":{"Start":"2025-01-01T00:00:00Z","End":"2025-03-01T00:00:00Z"},"EmissionsTypes":["TOTAL"]}`,
		`{"TimePeriod":{"Start":"2025-01-01T00:00:00Z","End":"2025-03-01T00:00:00Z"},"Groupby":["REGION"]}`,
		`{"TimePeriod":{"Start":"2025-01-01T00:00:00Z","End":"2025-03-01T00:00:00Z"},"NextToken":"forged"}`,
	} {
		code, h, b := c.do(c.signed(awsfake.CarbonPath, "sustainability", []byte(body), keys, nil), nil)
		if code != 400 || h.Get("X-Amzn-Errortype") != "ValidationException" || !strings.Contains(b, `"message"`) {
			t.Errorf("%s: %d %s %s", body, code, h.Get("X-Amzn-Errortype"), b)
		}
	}
}

// TestSignature: the fake recomputes every signature; anything the
// signature covers that changes, or a wrong key, is refused.
func TestSignature(t *testing.T) {
	c := newClient(t)
	body := []byte(`{"TimePeriod":{"Start":"2025-01-01T00:00:00Z","End":"2025-02-01T00:00:00Z"}}`)
	tests := []struct {
		name     string
		req      func() *http.Request
		wantCode string
	}{
		{"no signature", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, c.ts.URL+awsfake.CarbonPath, bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			return r
		}, "MissingAuthenticationTokenException"},
		{"wrong secret", func() *http.Request {
			return c.signed(awsfake.CarbonPath, "sustainability", body, awsfake.Credentials{AccessKeyID: keys.AccessKeyID, SecretAccessKey: "other"}, nil)
		}, "InvalidSignatureException"},
		{"unknown key", func() *http.Request {
			return c.signed(awsfake.CarbonPath, "sustainability", body, awsfake.Credentials{AccessKeyID: "AKIAOTHER", SecretAccessKey: "x"}, nil)
		}, "UnrecognizedClientException"},
		{"wrong service", func() *http.Request { return c.signed(awsfake.CarbonPath, "sts", body, keys, nil) }, "InvalidSignatureException"},
		{"body changed after signing", func() *http.Request {
			r := c.signed(awsfake.CarbonPath, "sustainability", body, keys, nil)
			other := bytes.Replace(body, []byte("2025-02"), []byte("2025-03"), 1)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(other)), int64(len(other))
			return r
		}, "InvalidSignatureException"},
		{"signed header changed", func() *http.Request {
			r := c.signed(awsfake.CarbonPath, "sustainability", body, keys, http.Header{"X-Extra": {"a"}})
			r.Header.Set("X-Extra", "b")
			return r
		}, "InvalidSignatureException"},
		{"a session token the key does not have", func() *http.Request {
			return c.signed(awsfake.CarbonPath, "sustainability", body, awsfake.Credentials{AccessKeyID: keys.AccessKeyID, SecretAccessKey: keys.SecretAccessKey, SessionToken: "tok"}, nil)
		}, "UnrecognizedClientException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, b := c.do(tt.req(), nil)
			if code != 403 || h.Get("X-Amzn-Errortype") != tt.wantCode {
				t.Errorf("%d %s %s, want 403 %s", code, h.Get("X-Amzn-Errortype"), b, tt.wantCode)
			}
		})
	}
	if code, _, b := c.do(c.signed(awsfake.CarbonPath, "sustainability", body, keys, http.Header{"X-Extra": {"a"}}), nil); code != 200 {
		t.Errorf("a good signature: %d %s", code, b)
	}
}

func TestWater(t *testing.T) {
	c := newClient(t)
	for _, tt := range []struct {
		start, end string
		want       int
	}{
		{"2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z", 1},
		{"2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z", 1}, // a year is in when its first instant is
		{"2025-01-02T00:00:00Z", "2026-01-01T00:00:00Z", 0},
	} {
		var p page
		body := `{"TimePeriod":{"Start":"` + tt.start + `","End":"` + tt.end + `"},"GroupBy":["SERVICE"],"Granularity":"YEARLY_CALENDAR"}`
		if code, _, b := c.do(c.signed(awsfake.WaterPath, "sustainability", []byte(body), keys, nil), &p); code != 200 {
			t.Fatalf("%d %s", code, b)
		}
		if len(p.Results) != tt.want {
			t.Errorf("%s..%s: %+v", tt.start, tt.end, p.Results)
			continue
		}
		if tt.want == 1 {
			r := p.Results[0]
			if v := r.AllocationValues["TOTAL_WATER_WITHDRAWALS"]; v.Unit != "m3" || v.Value != 4 || r.ModelVersion != "v1.0.0" || r.TimePeriod.End != "2026-01-01T00:00:00Z" {
				t.Errorf("%+v", r)
			}
		}
	}
	body := `{"TimePeriod":{"Start":"2025-01-01T00:00:00Z","End":"2026-01-01T00:00:00Z"},"Granularity":"MONTHLY"}`
	if code, _, _ := c.do(c.signed(awsfake.WaterPath, "sustainability", []byte(body), keys, nil), nil); code != 400 {
		t.Errorf("monthly water: %d, want 400", code)
	}
}

func TestDeny(t *testing.T) {
	c := newClient(t)
	c.fake.Deny(awsfake.ActionWater, "")
	body := []byte(`{"TimePeriod":{"Start":"2025-01-01T00:00:00Z","End":"2026-01-01T00:00:00Z"}}`)
	code, h, b := c.do(c.signed(awsfake.WaterPath, "sustainability", body, keys, nil), nil)
	if code != 403 || h.Get("X-Amzn-Errortype") != "AccessDeniedException" || !strings.Contains(b, "sustainability:GetEstimatedWaterAllocation") {
		t.Errorf("%d %s %s", code, h.Get("X-Amzn-Errortype"), b)
	}
	if code, _, _ := c.do(c.signed(awsfake.CarbonPath, "sustainability", body, keys, nil), nil); code != 200 {
		t.Errorf("carbon is not denied: %d", code)
	}
	c.fake.Allow(awsfake.ActionWater)
	if code, _, _ := c.do(c.signed(awsfake.WaterPath, "sustainability", body, keys, nil), nil); code != 200 {
		t.Errorf("allowed again: %d", code)
	}
}

func TestListAccounts(t *testing.T) {
	c := newClient(t)
	target := http.Header{"X-Amz-Target": {"AWSOrganizationsV20161128.ListAccounts"}, "Content-Type": {"application/x-amz-json-1.1"}}
	var ids []string
	token := ""
	for range 5 {
		body := `{"MaxResults":2}`
		if token != "" {
			body = `{"MaxResults":2,"NextToken":"` + token + `"}`
		}
		var out struct {
			Accounts  []struct{ ID, Arn, Name string }
			NextToken string
		}
		if code, _, b := c.do(c.signed("/", "organizations", []byte(body), keys, target), &out); code != 200 {
			t.Fatalf("%d %s", code, b)
		}
		for _, a := range out.Accounts {
			ids = append(ids, a.ID)
			if !strings.HasPrefix(a.Arn, "arn:aws:organizations::111111111111:account/o-abc/") {
				t.Errorf("arn %s", a.Arn)
			}
		}
		if token = out.NextToken; token == "" {
			break
		}
	}
	if strings.Join(ids, ",") != "111111111111,222222222222,333333333333" {
		t.Errorf("ids %v", ids)
	}
	c.fake.Deny(awsfake.ActionListAccounts, "AWSOrganizationsNotInUseException")
	code, _, b := c.do(c.signed("/", "organizations", []byte(`{}`), keys, target), nil)
	if code != 400 || !strings.Contains(b, `"__type":"AWSOrganizationsNotInUseException"`) {
		t.Errorf("%d %s", code, b)
	}
}

func TestWebIdentity(t *testing.T) {
	c := newClient(t)
	c.fake.AllowWebIdentity("token-1", "arn:aws:iam::111111111111:role/r")
	post := func(token string) (int, string) {
		form := url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}, "RoleArn": {"arn:aws:iam::111111111111:role/r"},
			"RoleSessionName": {"s"}, "WebIdentityToken": {token}}
		resp, err := http.PostForm(c.ts.URL+"/", form)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, b := post("token-1")
	if code != 200 || !strings.Contains(b, "<AssumeRoleWithWebIdentityResult>") || !strings.Contains(b, "<AccessKeyId>ASIA") {
		t.Errorf("%d %s", code, b)
	}
	if code, b := post("forged"); code != 400 || !strings.Contains(b, "<Code>InvalidIdentityToken</Code>") {
		t.Errorf("%d %s", code, b)
	}
	if c.fake.Requests(awsfake.OpAssumeRoleWithWebIdentity) != 2 {
		t.Errorf("%d requests", c.fake.Requests(awsfake.OpAssumeRoleWithWebIdentity))
	}
}

func TestDemo(t *testing.T) {
	now := time.Date(2026, time.November, 23, 0, 0, 0, 0, time.UTC)
	ds := awsfake.Demo(now)
	months := ds.Months()
	if len(months) != awsfake.DemoMonths || months[len(months)-1] != provider.NewMonth(2026, time.October) {
		t.Errorf("months %v..%v (%d)", months[0], months[len(months)-1], len(months))
	}
	if y := ds.WaterYears(); len(y) != 2 || y[0] != 2024 || y[1] != 2025 {
		t.Errorf("water years %v, want the complete ones, 2024 and 2025", y)
	}
	again := awsfake.Demo(now.AddDate(0, 0, 5))
	if len(again.Rows) != len(ds.Rows) || again.Rows[0] != ds.Rows[0] {
		t.Error("the demo's figures depend on now, not only on the month")
	}
	regions := map[string]bool{}
	for _, r := range ds.Rows {
		regions[r.Region] = true
		if r.Scope2MBM > r.Scope2LBM || r.Scope1 <= 0 {
			t.Fatalf("implausible row %+v", r)
		}
	}
	if !regions["global"] || len(ds.Accounts) < 4 {
		t.Errorf("regions %v, %d accounts", regions, len(ds.Accounts))
	}
}
