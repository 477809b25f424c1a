package aws

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/aws/awsfake"
)

// restClientFor is the hand-written client against a fake, signing with
// the fake's keys, as New builds it.
func restClientFor(t *testing.T, fake *awsfake.Server, creds awsfake.Credentials) *restClient {
	t.Helper()
	ts := httptest.NewServer(fake)
	t.Cleanup(ts.Close)
	return &restClient{
		endpoint: ts.URL,
		region:   "us-east-1",
		http:     ts.Client(),
		creds:    credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken),
		signer:   v4.NewSigner(),
		retryer:  retry.NewStandard(),
		maxWait:  time.Second,
	}
}

// TestDimensionValues covers the operation Fetch does not need: the
// client speaks it as the model says, pages included.
func TestDimensionValues(t *testing.T) {
	now := time.Date(2026, time.March, 20, 0, 0, 0, 0, time.UTC)
	ds := awsfake.Demo(now)
	creds := awsfake.Credentials{AccessKeyID: "AKIATESTKEY000000001", SecretAccessKey: "secret"}
	fake := awsfake.NewServer(ds, creds)
	c := restClientFor(t, fake, creds)
	latest := awsfake.LatestPublished(now)
	in := &getEstimatedCarbonEmissionsDimensionValuesInput{
		TimePeriod: &timePeriod{Start: aws.Time(latest.Start()), End: aws.Time(latest.End())},
		Dimensions: []string{dimensionRegion, dimensionService},
		MaxResults: aws.Int32(4),
	}
	var got []dimensionEntry
	for pages := 1; ; pages++ {
		out, err := c.GetEstimatedCarbonEmissionsDimensionValues(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, out.Results...)
		if out.NextToken == nil {
			if pages < 2 {
				t.Errorf("%d page, want several", pages)
			}
			break
		}
		in.NextToken = out.NextToken
	}
	var regions, services []string
	for _, e := range got {
		switch e.Dimension {
		case dimensionRegion:
			regions = append(regions, e.Value)
		case dimensionService:
			services = append(services, e.Value)
		default:
			t.Errorf("unexpected dimension %+v", e)
		}
	}
	if !slices.Contains(regions, "global") || !slices.Contains(regions, "us-east-1") || !slices.Contains(services, "AmazonEC2") {
		t.Errorf("regions %v, services %v", regions, services)
	}
	if fake.Requests(awsfake.OpCarbonDimensions) < 2 {
		t.Errorf("%d requests", fake.Requests(awsfake.OpCarbonDimensions))
	}
}

func TestTimePeriodWire(t *testing.T) {
	start := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
	b, err := json.Marshal(&getEstimatedCarbonEmissionsInput{TimePeriod: &timePeriod{Start: &start, End: aws.Time(start.AddDate(0, 1, 0))}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"TimePeriod":{"Start":"2026-01-01T00:00:00Z","End":"2026-02-01T00:00:00Z"}}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
	var back timePeriod
	if err := json.Unmarshal([]byte(`{"Start":"2026-01-01T00:00:00.000Z","End":"2026-02-01T00:00:00Z"}`), &back); err != nil {
		t.Fatal(err)
	}
	if !back.Start.Equal(start) || !back.End.Equal(start.AddDate(0, 1, 0)) {
		t.Errorf("got %v", back)
	}
	if err := json.Unmarshal([]byte(`{"Start":"January"}`), &back); err == nil {
		t.Error("a bad date-time decoded")
	}
}

// TestDecodePage: answers decode as the generated deserializers read
// them, whitespace inside strings kept, members the model does not know
// skipped, and an answer that is not a page refused.
func TestDecodePage(t *testing.T) {
	body := " {\n \"Extra\": {\"a\": [1, {\"b\": \"}\"}]},\t\"Results\": [ {\"Dimension\": \"SERVICE\", " +
		"\"Value\": \"Amazon \\\" EC2 \"} , {\"Dimension\":\"REGION\",\"Value\":\"us-east-1\"} ], \"NextToken\": \"t 1\" }\n"
	var out getEstimatedCarbonEmissionsDimensionValuesOutput
	out.NextToken = aws.String("stale")
	if err := out.decode(strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	want := []dimensionEntry{{Dimension: "SERVICE", Value: `Amazon " EC2 `}, {Dimension: "REGION", Value: "us-east-1"}}
	if !slices.Equal(out.Results, want) || aws.ToString(out.NextToken) != "t 1" {
		t.Errorf("decoded %+v %q, want %+v %q", out.Results, aws.ToString(out.NextToken), want, "t 1")
	}
	if err := out.decode(strings.NewReader(`{"Results":null}`)); err != nil || out.Results != nil || out.NextToken != nil {
		t.Errorf("a page of no results: %+v, %v", out, err)
	}
	for _, bad := range []string{`[]`, `{"Results":{}}`, `{"Results":[`, `{"NextToken":1}`, ``} {
		if err := out.decode(strings.NewReader(bad)); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

func TestParseAccountARN(t *testing.T) {
	for _, tt := range []struct{ arn, org, mgmt string }{
		{"arn:aws:organizations::111111111111:account/o-exampleorgid/222222222222", "o-exampleorgid", "111111111111"},
		{"arn:aws-us-gov:organizations::111111111111:account/o-x/333333333333", "o-x", "111111111111"},
		{"arn:aws:iam::111111111111:role/x", "", ""},
		{"arn:aws:organizations::111111111111:root/o-x/r-1", "", ""},
		{"", "", ""},
	} {
		org, mgmt := parseAccountARN(tt.arn)
		if org != tt.org || mgmt != tt.mgmt {
			t.Errorf("%q: %q, %q; want %q, %q", tt.arn, org, mgmt, tt.org, tt.mgmt)
		}
	}
}

func TestMethodOf(t *testing.T) {
	for _, tt := range []struct {
		url, target, contentType, want string
	}{
		{url: "https://api.sustainability.us-east-1.api.aws/v1/estimated-carbon-emissions", want: "carbon_emissions"},
		{url: "https://proxy.example.com/aws/v1/estimated-carbon-emissions-dimension-values", want: "carbon_dimension_values"},
		{url: "https://api.sustainability.us-east-1.api.aws/v1/estimated-water-allocation", want: "water_allocation"},
		{url: "https://organizations.us-east-1.amazonaws.com/", target: "AWSOrganizationsV20161128.ListAccounts", want: "organizations"},
		{url: "https://sts.us-east-1.amazonaws.com/", want: "sts"},
		{url: "http://127.0.0.1:1/", contentType: "application/x-www-form-urlencoded", want: "sts"},
		{url: "http://169.254.169.254/latest/api/token", want: "other"},
	} {
		req, _ := http.NewRequest(http.MethodPost, tt.url, nil)
		req.Header.Set("X-Amz-Target", tt.target)
		req.Header.Set("Content-Type", tt.contentType)
		if got := methodOf(req); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.url, got, tt.want)
		}
	}
}

// TestRetryQuota: once the retryer's token bucket is empty, the operation
// ends with the error that caused the retry, not the quota's.
func TestRetryQuota(t *testing.T) {
	creds := awsfake.Credentials{AccessKeyID: "AKIATESTKEY000000001", SecretAccessKey: "secret"}
	fake := awsfake.NewServer(awsfake.Dataset{}, creds)
	c := restClientFor(t, fake, creds)
	c.retryer = retry.NewStandard(func(o *retry.StandardOptions) {
		o.RateLimiter = emptyBucket{}
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
	})
	fake.Inject(awsfake.OpCarbon, awsfake.ErrorFault(http.StatusInternalServerError, "InternalServerException", "boom"))
	_, err := c.GetEstimatedCarbonEmissions(context.Background(), &getEstimatedCarbonEmissionsInput{})
	if err == nil || !strings.Contains(err.Error(), "InternalServerException") {
		t.Fatalf("err %v, want the server's error", err)
	}
	if n := fake.Requests(awsfake.OpCarbon); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	p := &Provider{}
	if r := p.classify(context.Background(), opCarbon, err).Reason; r != provider.ReasonServer {
		t.Errorf("reason %s, want %s", r, provider.ReasonServer)
	}
}

type emptyBucket struct{}

func (emptyBucket) GetToken(context.Context, uint) (func() error, error) {
	return nil, &retry.MaxAttemptsError{}
}
func (emptyBucket) AddTokens(uint) error { return nil }

// TestTagValue checks how a tag's group key, "key$value", becomes the
// value of a record.
func TestTagValue(t *testing.T) {
	for _, tt := range []struct{ key, group, want, err string }{
		{"team", "team$web", "web", ""},
		// Untagged cost, or a tag with an empty value: AWS tells them not
		// apart.
		{"team", "team$", "", ""},
		{"aws:eks:namespace", "aws:eks:namespace$kube-system", "kube-system", ""},
		// Every punctuation AWS allows in a value is kept as it is.
		{"team", "team$a b=c:d/e+f-g@h.i_j", "a b=c:d/e+f-g@h.i_j", ""},
		// Keys are case-sensitive: another key's groups are no answer.
		{"Team", "team$web", "", `is "team$web", not Team$ and a value`},
		{"team", "web", "", `is "web", not team$`},
		{"team", "team$" + strings.Repeat("é", 600), "", "1200 bytes long"},
	} {
		got, err := tagValue(tt.key, tt.group)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("tagValue(%q, %q) = %q, %v; want %q", tt.key, tt.group, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("tagValue(%q, %q): error %v, want one saying %q", tt.key, tt.group, err, tt.err)
		}
	}
}
