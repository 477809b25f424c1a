package gcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	datatransfer "cloud.google.com/go/bigquery/datatransfer/apiv1"
	"cloud.google.com/go/bigquery/datatransfer/apiv1/datatransferpb"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// CarbonFootprintDataSource is the BigQuery Data Transfer Service data
// source id of the Carbon Footprint export.
const CarbonFootprintDataSource = "61cede5a-0000-2440-ad42-883d24f8f7b8"

// EarliestBackfill is the first month Google can export (2021-01): the
// earliest backfill run, on 2021-02-15, carries January 2021.
const EarliestBackfill provider.Month = 2021 * 12

// SetupOptions configures Setup.
type SetupOptions struct {
	// Project owns the transfer config and the destination dataset.
	Project string
	// Location is the dataset's location ("US", "EU", "europe-west1").
	// Empty lets the Data Transfer Service use the dataset's location;
	// naming it makes the lookup of existing configs exact.
	Location string
	// BillingAccount is the billing account to export
	// ("XXXXXX-XXXXXX-XXXXXX").
	BillingAccount string
	// Dataset is the destination dataset id in Project ("carbon_export",
	// or "project.carbon_export" naming the same project). It must exist.
	Dataset string
	// BackfillFrom requests a backfill of every month from this one
	// (2021-01 at the earliest) to the latest published; zero requests
	// none.
	BackfillFrom provider.Month
	// DryRun prints what Setup would do and sends no request at all.
	DryRun bool

	// Endpoint overrides the Data Transfer API endpoint
	// ("http://127.0.0.1:9051"): tests and private endpoints.
	Endpoint string
	// WithoutAuthentication sends no credentials. Tests only.
	WithoutAuthentication bool
	// CredentialsFile is a service-account key file; empty selects
	// Application Default Credentials. The identity needs the BigQuery
	// Admin role on Project and Carbon Footprint Viewer on the billing
	// account.
	CredentialsFile string
	// HTTPClient is the base client; nil selects a default.
	HTTPClient *http.Client
	// Out receives the report of what was (or would be) done; nil
	// discards it.
	Out io.Writer
	// Now is the clock for the backfill's end time; nil means time.Now.
	Now func() time.Time
}

var (
	billingAccountPattern = regexp.MustCompile(`^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$`)
	locationPattern       = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`)
)

// setupPlan is what Setup does, worked out before any request.
type setupPlan struct {
	parent, dataset, billingAccount, displayName string
	backfill                                     *datatransferpb.StartManualTransferRunsRequest_TimeRange
	backfillFrom, backfillTo                     provider.Month
}

func planSetup(o *SetupOptions) (*setupPlan, error) {
	if !projectPattern.MatchString(o.Project) {
		return nil, fmt.Errorf("gcp setup: project %q: want a Google Cloud project id", o.Project)
	}
	ba := strings.ToUpper(strings.TrimSpace(o.BillingAccount))
	if !billingAccountPattern.MatchString(ba) {
		return nil, fmt.Errorf("gcp setup: billing account %q: want XXXXXX-XXXXXX-XXXXXX", o.BillingAccount)
	}
	ds := strings.TrimSpace(o.Dataset)
	if i := strings.LastIndex(ds, "."); i >= 0 {
		if ds[:i] != o.Project {
			return nil, fmt.Errorf("gcp setup: dataset %q is not in project %s: the transfer config and its destination dataset must be in the same project", o.Dataset, o.Project)
		}
		ds = ds[i+1:]
	}
	if !datasetPattern.MatchString(ds) {
		return nil, fmt.Errorf("gcp setup: dataset %q: want a dataset id (letters, digits and underscores)", o.Dataset)
	}
	p := &setupPlan{
		parent:         "projects/" + o.Project,
		dataset:        ds,
		billingAccount: ba,
		displayName:    "Carbon Footprint " + ba,
	}
	if o.Location != "" {
		if !locationPattern.MatchString(o.Location) {
			return nil, fmt.Errorf("gcp setup: location %q: want a BigQuery location such as US, EU or europe-west1", o.Location)
		}
		// Data Transfer Service location ids are lower case.
		p.parent += "/locations/" + strings.ToLower(o.Location)
	}
	if o.BackfillFrom != 0 {
		if o.BackfillFrom < EarliestBackfill {
			return nil, fmt.Errorf("gcp setup: backfill from %s: Google exports no month before %s", o.BackfillFrom, EarliestBackfill)
		}
		now := time.Now
		if o.Now != nil {
			now = o.Now
		}
		end := now().UTC().Truncate(time.Second)
		// The run on the 15th of month M+1 exports month M.
		start := o.BackfillFrom.End().Add(PublishDelay)
		if !start.Before(end) {
			return nil, fmt.Errorf("gcp setup: backfill from %s: that month is exported on %s, which is not past yet",
				o.BackfillFrom, start.Format(time.DateOnly))
		}
		p.backfill = &datatransferpb.StartManualTransferRunsRequest_TimeRange{StartTime: timestamppb.New(start), EndTime: timestamppb.New(end)}
		p.backfillFrom = o.BackfillFrom
		p.backfillTo = provider.MonthOf(end.Add(-PublishDelay)) - 1
	}
	return p, nil
}

// transferConfig returns the config Setup creates.
func (p *setupPlan) transferConfig() *datatransferpb.TransferConfig {
	return &datatransferpb.TransferConfig{
		DisplayName:  p.displayName,
		DataSourceId: CarbonFootprintDataSource,
		Destination:  &datatransferpb.TransferConfig_DestinationDatasetId{DestinationDatasetId: p.dataset},
		Params: &structpb.Struct{Fields: map[string]*structpb.Value{
			"billing_accounts": structpb.NewStringValue(p.billingAccount),
		}},
	}
}

// Setup creates the Carbon Footprint export of a billing account into a
// dataset through the BigQuery Data Transfer API, and optionally requests
// a backfill of past months. It is idempotent: a config of the same
// billing account into the same dataset is reported and reused, never
// duplicated. With DryRun it prints the plan and sends nothing, so it
// needs no credentials.
func Setup(ctx context.Context, o SetupOptions) error {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	plan, err := planSetup(&o)
	if err != nil {
		return err
	}
	if o.DryRun {
		plan.printDryRun(out)
		return nil
	}
	if o.WithoutAuthentication && o.CredentialsFile != "" {
		return errors.New("gcp setup: a credentials file and no authentication exclude each other")
	}

	hc, err := newHTTPClient(clientConfig{
		base:          o.HTTPClient,
		credsFile:     o.CredentialsFile,
		noAuth:        o.WithoutAuthentication,
		scopes:        datatransfer.DefaultAuthScopes(),
		endpointNamer: func(*http.Request) string { return "" },
	})
	if err != nil {
		return err
	}
	copts := []option.ClientOption{option.WithHTTPClient(hc)}
	if o.Endpoint != "" {
		copts = append(copts, option.WithEndpoint(o.Endpoint))
	}
	client, err := datatransfer.NewRESTClient(ctx, copts...)
	if err != nil {
		return fmt.Errorf("gcp setup: Data Transfer client: %w", err)
	}
	defer func() { _ = client.Close() }()

	existing, others, err := findConfig(ctx, client, plan)
	if err != nil {
		return setupError("listing transfer configs in "+plan.parent, err)
	}
	name := ""
	if existing != nil {
		name = existing.GetName()
		fmt.Fprintf(out, "Carbon Footprint export of billing account %s into dataset %s.%s already exists: %s (%q); not creating another.\n",
			plan.billingAccount, o.Project, plan.dataset, name, existing.GetDisplayName())
	} else {
		for _, c := range others {
			fmt.Fprintf(out, "Note: transfer config %s already exports billing accounts %s into dataset %s.\n",
				c.GetName(), billingAccounts(c), plan.dataset)
		}
		created, err := client.CreateTransferConfig(ctx, &datatransferpb.CreateTransferConfigRequest{
			Parent:         plan.parent,
			TransferConfig: plan.transferConfig(),
		})
		if err != nil {
			return setupError("creating the transfer config in "+plan.parent, err)
		}
		name = created.GetName()
		fmt.Fprintf(out, "Created transfer config %s (%q): Carbon Footprint of billing account %s into dataset %s.%s, exported on the 15th of every month.\n",
			name, created.GetDisplayName(), plan.billingAccount, o.Project, plan.dataset)
	}

	if plan.backfill == nil {
		if existing == nil {
			fmt.Fprintf(out, "No backfill requested: the first month arrives on the next 15th. Use a backfill month (%s at the earliest) to export history.\n", EarliestBackfill)
		}
		return nil
	}
	resp, err := client.StartManualTransferRuns(ctx, &datatransferpb.StartManualTransferRunsRequest{
		Parent: name,
		Time:   &datatransferpb.StartManualTransferRunsRequest_RequestedTimeRange{RequestedTimeRange: plan.backfill},
	})
	if err != nil {
		return setupError("requesting the backfill of "+name, err)
	}
	fmt.Fprintf(out, "Requested a backfill of %s to %s (runs from %s to %s): %d transfer runs scheduled.\n",
		plan.backfillFrom, plan.backfillTo, plan.backfill.GetStartTime().AsTime().Format(time.RFC3339),
		plan.backfill.GetEndTime().AsTime().Format(time.RFC3339), len(resp.GetRuns()))
	return nil
}

func (p *setupPlan) printDryRun(out io.Writer) {
	fmt.Fprintf(out, "Dry run: no request is sent.\n")
	fmt.Fprintf(out, "Would look for a transfer config in %s with data source %s, destination dataset %s and billing account %s, and report it if it exists.\n",
		p.parent, CarbonFootprintDataSource, p.dataset, p.billingAccount)
	fmt.Fprintf(out, "Otherwise would create in %s: displayName %q, dataSourceId %s, destinationDatasetId %s, params.billing_accounts %s.\n",
		p.parent, p.displayName, CarbonFootprintDataSource, p.dataset, p.billingAccount)
	if p.backfill != nil {
		fmt.Fprintf(out, "Would request a backfill of %s to %s: startManualRuns with requestedTimeRange startTime %s, endTime %s.\n",
			p.backfillFrom, p.backfillTo, p.backfill.GetStartTime().AsTime().Format(time.RFC3339),
			p.backfill.GetEndTime().AsTime().Format(time.RFC3339))
	}
}

// findConfig returns the Carbon Footprint config of the plan's billing
// account into its dataset, if any, and the other Carbon Footprint configs
// into the same dataset.
func findConfig(ctx context.Context, client *datatransfer.Client, plan *setupPlan) (*datatransferpb.TransferConfig, []*datatransferpb.TransferConfig, error) {
	it := client.ListTransferConfigs(ctx, &datatransferpb.ListTransferConfigsRequest{
		Parent:        plan.parent,
		DataSourceIds: []string{CarbonFootprintDataSource},
	})
	var others []*datatransferpb.TransferConfig
	for {
		c, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil, others, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if c.GetDataSourceId() != CarbonFootprintDataSource || c.GetDestinationDatasetId() != plan.dataset {
			continue
		}
		if slices.Contains(billingAccounts(c), plan.billingAccount) {
			return c, nil, nil
		}
		others = append(others, c)
	}
}

// billingAccounts returns a config's billing_accounts parameter, a
// comma-separated list, normalised.
func billingAccounts(c *datatransferpb.TransferConfig) []string {
	var out []string
	for a := range strings.SplitSeq(c.GetParams().GetFields()["billing_accounts"].GetStringValue(), ",") {
		if a = strings.ToUpper(strings.TrimSpace(a)); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// setupError adds a hint for the failures a user can fix.
func setupError(what string, err error) error {
	code := 0
	if ae, ok := errors.AsType[*apierror.APIError](err); ok {
		code = ae.HTTPCode()
	}
	switch code {
	case http.StatusUnauthorized:
		return fmt.Errorf("gcp setup: %s: %w (check the credentials)", what, err)
	case http.StatusForbidden:
		return fmt.Errorf("gcp setup: %s: %w (the identity needs BigQuery Admin on the project, Carbon Footprint Viewer "+
			"on the billing account, and the BigQuery Data Transfer API enabled)", what, err)
	case http.StatusNotFound:
		return fmt.Errorf("gcp setup: %s: %w (check the project, the location and that the dataset exists)", what, err)
	}
	return fmt.Errorf("gcp setup: %s: %w", what, err)
}
