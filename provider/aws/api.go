package aws

// This file is the hand-written part of the client: the three
// Sustainability API operations the generated module
// github.com/aws/aws-sdk-go-v2/service/sustainability would provide, were
// it served. Everything else (credentials, signing, retry decisions and
// backoff, error shapes) is the SDK's. The shapes below mirror the
// generated ones field for field, and failures come back as the generated
// client's would (*smithy.OperationError around *awshttp.ResponseError
// around *smithy.GenericAPIError, or *smithy.DeserializationError), so
// that replacing this file with the generated client changes type names
// and nothing else.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/restjson"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithytime "github.com/aws/smithy-go/time"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// sustainabilityAPI is what the provider uses of the AWS Sustainability
// API: the method set of the generated client.
type sustainabilityAPI interface {
	GetEstimatedCarbonEmissions(ctx context.Context, in *getEstimatedCarbonEmissionsInput) (*getEstimatedCarbonEmissionsOutput, error)
	GetEstimatedCarbonEmissionsDimensionValues(ctx context.Context, in *getEstimatedCarbonEmissionsDimensionValuesInput) (*getEstimatedCarbonEmissionsDimensionValuesOutput, error)
	GetEstimatedWaterAllocation(ctx context.Context, in *getEstimatedWaterAllocationInput) (*getEstimatedWaterAllocationOutput, error)
}

// Operation names and their HTTP paths, from the Smithy model.
const (
	serviceID          = "Sustainability"
	signingName        = "sustainability"
	opCarbon           = "GetEstimatedCarbonEmissions"
	opCarbonDimensions = "GetEstimatedCarbonEmissionsDimensionValues"
	opWater            = "GetEstimatedWaterAllocation"

	carbonPath           = "/v1/estimated-carbon-emissions"
	carbonDimensionsPath = "/v1/estimated-carbon-emissions-dimension-values"
	waterPath            = "/v1/estimated-water-allocation"
)

// Enum values of the model.
const (
	dimensionUsageAccountID = "USAGE_ACCOUNT_ID"
	dimensionRegion         = "REGION"
	dimensionService        = "SERVICE"

	emissionsTotalLBM  = "TOTAL_LBM_CARBON_EMISSIONS"
	emissionsTotalMBM  = "TOTAL_MBM_CARBON_EMISSIONS"
	emissionsScope1    = "TOTAL_SCOPE_1_CARBON_EMISSIONS"
	emissionsScope2LBM = "TOTAL_SCOPE_2_LBM_CARBON_EMISSIONS"
	emissionsScope2MBM = "TOTAL_SCOPE_2_MBM_CARBON_EMISSIONS"
	emissionsScope3LBM = "TOTAL_SCOPE_3_LBM_CARBON_EMISSIONS"
	emissionsScope3MBM = "TOTAL_SCOPE_3_MBM_CARBON_EMISSIONS"

	waterWithdrawals = "TOTAL_WATER_WITHDRAWALS"

	granularityMonthly        = "MONTHLY"
	granularityYearlyCalendar = "YEARLY_CALENDAR"

	// unitMTCO2e is EmissionsUnit MT_CO2E, metric tons of CO2-equivalent;
	// unitCubicMeters is WaterAllocationUnit CUBIC_METERS.
	unitMTCO2e      = "MTCO2e"
	unitCubicMeters = "m3"
)

// timePeriod is the model's TimePeriod: Start inclusive, End exclusive,
// serialized as date-time strings.
type timePeriod struct {
	Start *time.Time
	End   *time.Time
}

func (t timePeriod) MarshalJSON() ([]byte, error) {
	w := struct {
		Start string `json:"Start,omitempty"`
		End   string `json:"End,omitempty"`
	}{}
	if t.Start != nil {
		w.Start = smithytime.FormatDateTime(*t.Start)
	}
	if t.End != nil {
		w.End = smithytime.FormatDateTime(*t.End)
	}
	return json.Marshal(w)
}

func (t *timePeriod) UnmarshalJSON(b []byte) error {
	var w struct{ Start, End *string }
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	for _, f := range []struct {
		s   *string
		dst **time.Time
	}{{w.Start, &t.Start}, {w.End, &t.End}} {
		if f.s == nil {
			continue
		}
		v, err := smithytime.ParseDateTime(*f.s)
		if err != nil {
			return fmt.Errorf("time period: %w", err)
		}
		*f.dst = &v
	}
	return nil
}

type filterExpression struct {
	Dimensions map[string][]string `json:"Dimensions,omitempty"`
}

type getEstimatedCarbonEmissionsInput struct {
	TimePeriod     *timePeriod       `json:"TimePeriod,omitempty"`
	GroupBy        []string          `json:"GroupBy,omitempty"`
	FilterBy       *filterExpression `json:"FilterBy,omitempty"`
	EmissionsTypes []string          `json:"EmissionsTypes,omitempty"`
	Granularity    string            `json:"Granularity,omitempty"`
	MaxResults     *int32            `json:"MaxResults,omitempty"`
	NextToken      *string           `json:"NextToken,omitempty"`
}

// quantity is the model's Emissions and WaterAllocation: a value and its
// unit.
type quantity struct {
	Unit  string   `json:"Unit"`
	Value *float64 `json:"Value"`
}

type estimatedCarbonEmissions struct {
	TimePeriod       *timePeriod         `json:"TimePeriod"`
	DimensionsValues map[string]string   `json:"DimensionsValues"`
	ModelVersion     *string             `json:"ModelVersion"`
	EmissionsValues  map[string]quantity `json:"EmissionsValues"`
}

type getEstimatedCarbonEmissionsOutput struct {
	Results   []estimatedCarbonEmissions `json:"Results"`
	NextToken *string                    `json:"NextToken"`
}

type getEstimatedCarbonEmissionsDimensionValuesInput struct {
	TimePeriod *timePeriod `json:"TimePeriod,omitempty"`
	Dimensions []string    `json:"Dimensions,omitempty"`
	MaxResults *int32      `json:"MaxResults,omitempty"`
	NextToken  *string     `json:"NextToken,omitempty"`
}

type dimensionEntry struct {
	Dimension string `json:"Dimension"`
	Value     string `json:"Value"`
}

type getEstimatedCarbonEmissionsDimensionValuesOutput struct {
	Results   []dimensionEntry `json:"Results"`
	NextToken *string          `json:"NextToken"`
}

type getEstimatedWaterAllocationInput struct {
	TimePeriod      *timePeriod       `json:"TimePeriod,omitempty"`
	GroupBy         []string          `json:"GroupBy,omitempty"`
	FilterBy        *filterExpression `json:"FilterBy,omitempty"`
	AllocationTypes []string          `json:"AllocationTypes,omitempty"`
	Granularity     string            `json:"Granularity,omitempty"`
	MaxResults      *int32            `json:"MaxResults,omitempty"`
	NextToken       *string           `json:"NextToken,omitempty"`
}

type estimatedWaterAllocation struct {
	TimePeriod       *timePeriod         `json:"TimePeriod"`
	DimensionsValues map[string]string   `json:"DimensionsValues"`
	ModelVersion     *string             `json:"ModelVersion"`
	AllocationValues map[string]quantity `json:"AllocationValues"`
}

type getEstimatedWaterAllocationOutput struct {
	Results   []estimatedWaterAllocation `json:"Results"`
	NextToken *string                    `json:"NextToken"`
}

// restClient speaks restJson1 to the Sustainability API: one signed POST
// per attempt, attempts as the SDK's standard retryer decides.
type restClient struct {
	endpoint string // base URL, no trailing slash
	region   string // SigV4 signing region
	http     *http.Client
	creds    aws.CredentialsProvider
	signer   *v4.Signer
	retryer  *retry.Standard
	// maxWait bounds any wait between attempts. A server asking for a
	// longer Retry-After is not waited for: the error goes back to the
	// caller, whose backoff honours it.
	maxWait time.Duration
}

var _ sustainabilityAPI = (*restClient)(nil)

func (c *restClient) GetEstimatedCarbonEmissions(ctx context.Context, in *getEstimatedCarbonEmissionsInput) (*getEstimatedCarbonEmissionsOutput, error) {
	var out getEstimatedCarbonEmissionsOutput
	return &out, c.invoke(ctx, opCarbon, carbonPath, in, &out)
}

func (c *restClient) GetEstimatedCarbonEmissionsDimensionValues(ctx context.Context, in *getEstimatedCarbonEmissionsDimensionValuesInput) (*getEstimatedCarbonEmissionsDimensionValuesOutput, error) {
	var out getEstimatedCarbonEmissionsDimensionValuesOutput
	return &out, c.invoke(ctx, opCarbonDimensions, carbonDimensionsPath, in, &out)
}

func (c *restClient) GetEstimatedWaterAllocation(ctx context.Context, in *getEstimatedWaterAllocationInput) (*getEstimatedWaterAllocationOutput, error) {
	var out getEstimatedWaterAllocationOutput
	return &out, c.invoke(ctx, opWater, waterPath, in, &out)
}

// invoke runs one operation: the retry loop of the SDK's retry middleware,
// with the retryer's own classification, backoff and retry quota, plus the
// server's Retry-After, which the SDK ignores but this exporter honours.
func (c *restClient) invoke(ctx context.Context, op, path string, in any, out pageDecoder) error {
	body, err := json.Marshal(in)
	if err != nil {
		return &smithy.OperationError{ServiceID: serviceID, OperationName: op, Err: &smithy.SerializationError{Err: err}}
	}
	var releaseRetry func(error) error
	for attempt := 1; ; attempt++ {
		releaseAttempt := func(error) error { return nil }
		if attempt == 1 {
			if releaseAttempt, err = c.retryer.GetAttemptToken(ctx); err != nil {
				return &smithy.OperationError{ServiceID: serviceID, OperationName: op, Err: err}
			}
		}
		err = c.attempt(ctx, path, body, out)
		if releaseRetry != nil {
			_ = releaseRetry(err)
		}
		_ = releaseAttempt(err)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || attempt >= c.retryer.MaxAttempts() || !c.retryer.IsErrorRetryable(err) {
			return &smithy.OperationError{ServiceID: serviceID, OperationName: op, Err: err}
		}
		delay, derr := c.retryer.RetryDelay(attempt, err)
		if derr != nil {
			return &smithy.OperationError{ServiceID: serviceID, OperationName: op, Err: err}
		}
		if ra, ok := retryAfter(err); ok {
			if ra > c.maxWait {
				return &smithy.OperationError{ServiceID: serviceID, OperationName: op, Err: err}
			}
			delay = max(delay, ra)
		}
		// An exhausted retry quota ends the operation with the error that
		// caused the retry, which says more than the quota's own.
		if releaseRetry, derr = c.retryer.GetRetryToken(ctx, err); derr != nil {
			return &smithy.OperationError{ServiceID: serviceID, OperationName: op, Err: err}
		}
		if serr := smithytime.SleepWithContext(ctx, delay); serr != nil {
			return &smithy.OperationError{ServiceID: serviceID, OperationName: op, Err: err}
		}
	}
}

// attempt sends one signed request and decodes its answer into out.
func (c *restClient) attempt(ctx context.Context, path string, body []byte, out pageDecoder) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint+path, bytes.NewReader(body))
	if err != nil {
		return &smithy.SerializationError{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	creds, err := c.creds.Retrieve(ctx)
	if err != nil {
		return &credentialsError{err: err}
	}
	sum := sha256.Sum256(body)
	if err := c.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), signingName, c.region, time.Now()); err != nil {
		return fmt.Errorf("signing the request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &smithyhttp.RequestSendError{Err: err}
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return responseError(resp)
	}
	// A truncated or invalid body is not retried (see finalError): a
	// server that sent one may well send it again, and the caller's
	// backoff is the better place to wait.
	if err := out.decode(resp.Body); err != nil {
		return &smithy.DeserializationError{Err: fmt.Errorf("failed to decode response body, %w", err)}
	}
	return nil
}

// responseError decodes a restJson1 error answer as the generated
// deserializers do: the code from X-Amzn-ErrorType, else from the body's
// code or __type, the message from the body.
func responseError(resp *http.Response) error {
	code := resp.Header.Get("X-Amzn-ErrorType")
	if code != "" {
		code = restjson.SanitizeErrorCode(code)
	}
	// An unreadable error body still leaves the status and the header's
	// code, which is what matters.
	bodyCode, message, _ := restjson.GetErrorInfo(json.NewDecoder(io.LimitReader(resp.Body, maxErrorBodyBytes)))
	if code == "" {
		code = bodyCode
	}
	fault := smithy.FaultClient
	if resp.StatusCode >= 500 {
		fault = smithy.FaultServer
	}
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: resp},
			Err:      &smithy.GenericAPIError{Code: code, Message: message, Fault: fault},
		},
		RequestID: resp.Header.Get("X-Amzn-Requestid"),
	}
}

// maxErrorBodyBytes bounds what is read of an error answer; AWS's are a
// few hundred bytes.
const maxErrorBodyBytes = 64 << 10

// retryAfter returns the Retry-After of an HTTP error answer.
func retryAfter(err error) (time.Duration, bool) {
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil {
		return 0, false
	}
	return httpx.ParseRetryAfter(re.Response.Header.Get("Retry-After"), time.Now())
}

// credentialsError is a failure to get credentials from the chain: no
// request was sent.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return "failed to retrieve credentials: " + e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// methodOf names an HTTP request's operation for the request self-metric,
// from a small fixed set; paths are matched by suffix so that it holds
// behind path-prefixed private endpoints.
func methodOf(req *http.Request) string {
	p := req.URL.Path
	switch {
	case strings.HasSuffix(p, carbonDimensionsPath):
		return "carbon_dimension_values"
	case strings.HasSuffix(p, carbonPath):
		return "carbon_emissions"
	case strings.HasSuffix(p, waterPath):
		return "water_allocation"
	case strings.HasPrefix(req.Header.Get("X-Amz-Target"), "AWSOrganizations"):
		return "organizations"
	case strings.HasPrefix(req.Header.Get("X-Amz-Target"), "AWSInsightsIndexService.") && isByTag(req):
		return "cost_and_usage_by_tag"
	case strings.HasPrefix(req.Header.Get("X-Amz-Target"), "AWSInsightsIndexService."):
		return "cost_and_usage"
	case strings.HasPrefix(req.URL.Host, "sts.") || strings.HasPrefix(req.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
		return "sts"
	}
	return "other"
}
