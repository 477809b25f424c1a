package aws_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	awsp "github.com/cloudcarbon/cloudcarbon_exporter/provider/aws"
)

func parse(t *testing.T, text string) (*config.Config, error) {
	t.Helper()
	getenv := func(k string) string {
		if k == "AWS_TEST_SECRET" {
			return canary
		}
		return ""
	}
	return config.Parse([]byte(text), "c.yml", getenv, []provider.Plugin{awsp.Plugin()})
}

// configCase is an aws section as a user writes it, and what it gives.
type configCase struct {
	name, text string
	want       awsp.Config
	wantErr    string
}

// TestConfig checks the aws section as users write it, through the real
// configuration parser: defaults, and a clear message at the right line
// for every mistake.
func TestConfig(t *testing.T) {
	for _, tt := range append(configCases(), allocationCases()...) {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(t, tt.text)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err %v, want %s", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), canary) {
					t.Errorf("the secret is in the message: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := *c.Sources[0].Config.(*awsp.Config)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, tt.want)
			}
			if s := c.String(); strings.Contains(s, canary) {
				t.Errorf("the printed configuration holds the secret:\n%s", s)
			}
		})
	}
}

func configCases() []configCase {
	return []configCase{
		{
			name: "defaults: the default credential chain",
			text: "aws:\n  - {}\n",
			want: awsp.Config{Name: "aws", AllocateTop: provider.DefaultAllocationTop, Partition: "aws", Endpoint: awsp.EndpointAWS},
		},
		{
			name: "GovCloud with a role",
			text: "aws:\n  - partition: aws-us-gov\n    role_arn: arn:aws-us-gov:iam::123456789012:role/carbon\n    external_id: ext-1\n    organizations: true\n",
			want: awsp.Config{Name: "aws", AllocateTop: provider.DefaultAllocationTop, Partition: "aws-us-gov", Endpoint: awsp.EndpointUSGov,
				RoleARN: "arn:aws-us-gov:iam::123456789012:role/carbon", ExternalID: "ext-1", Organizations: true},
		},
		{
			name: "China",
			text: "aws:\n  - partition: aws-cn\n    profile: carbon\n",
			want: awsp.Config{Name: "aws", AllocateTop: provider.DefaultAllocationTop, Partition: "aws-cn", Endpoint: awsp.EndpointChina, Profile: "carbon"},
		},
		{
			name: "static keys from the environment",
			text: "aws:\n  - access_key_id: AKIAIOSFODNN7EXAMPLE\n    secret_access_key_env: AWS_TEST_SECRET\n    endpoint: https://vpce.example.com\n",
			want: awsp.Config{Name: "aws", AllocateTop: provider.DefaultAllocationTop, Partition: "aws", Endpoint: "https://vpce.example.com",
				AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: canary, SecretAccessKeyEnv: "AWS_TEST_SECRET"},
		},
		{
			name:    "unknown partition",
			text:    "aws:\n  - partition: aws-eu\n",
			wantErr: "c.yml:2: aws.partition must be aws, aws-us-gov or aws-cn",
		},
		{
			name:    "bad endpoint",
			text:    "aws:\n  - endpoint: https://user:pw@example.com\n",
			wantErr: "c.yml:2: aws.endpoint must not contain a user name or password",
		},
		{
			name:    "a key id without its secret",
			text:    "aws:\n  - name: prod\n    access_key_id: AKIAIOSFODNN7EXAMPLE\n",
			wantErr: `c.yml:2: aws entry "prod" has no secret access key; set one of secret_access_key_env, secret_access_key_file or secret_access_key`,
		},
		{
			name:    "a secret without its key id",
			text:    "aws:\n  - name: prod\n    secret_access_key_env: AWS_TEST_SECRET\n",
			wantErr: `c.yml:2: aws entry "prod" sets a secret access key but no access_key_id; set both, or neither for the default credential chain`,
		},
		{
			name:    "a malformed key id",
			text:    "aws:\n  - access_key_id: akia-lower\n    secret_access_key_env: AWS_TEST_SECRET\n",
			wantErr: "c.yml:2: aws.access_key_id must be 16 to 128 capital letters and digits, such as AKIAIOSFODNN7EXAMPLE",
		},
		{
			name:    "static keys and a profile",
			text:    "aws:\n  - access_key_id: AKIAIOSFODNN7EXAMPLE\n    secret_access_key_env: AWS_TEST_SECRET\n    profile: x\n",
			wantErr: `c.yml:4: aws entry "aws" sets both profile and access_key_id; set one: static keys need no profile`,
		},
		{
			name:    "a role in another partition",
			text:    "aws:\n  - role_arn: arn:aws-cn:iam::123456789012:role/carbon\n",
			wantErr: "c.yml:2: aws.role_arn is in partition aws-cn, but the entry reads partition aws",
		},
		{
			name:    "not a role ARN",
			text:    "aws:\n  - role_arn: arn:aws:iam::123456789012:user/carbon\n",
			wantErr: "c.yml:2: aws.role_arn must be an IAM role ARN such as arn:aws:iam::123456789012:role/cloudcarbon",
		},
		{
			name:    "an external id without a role",
			text:    "aws:\n  - external_id: abc\n",
			wantErr: `c.yml:2: aws entry "aws" sets external_id but no role_arn; the external id is presented when assuming role_arn`,
		},
		{
			name:    "an organizations endpoint without organizations",
			text:    "aws:\n  - organizations_endpoint: https://organizations.example.com\n",
			wantErr: `c.yml:2: aws entry "aws" sets organizations_endpoint without organizations: true, which alone calls Organizations`,
		},
		{
			name: "provisional months",
			text: "aws:\n  - provisional: true\n    cost_explorer_endpoint: https://ce.vpce.example.com\n",
			want: awsp.Config{Name: "aws", AllocateTop: provider.DefaultAllocationTop, Partition: "aws", Endpoint: awsp.EndpointAWS, Provisional: true,
				CostExplorerEndpoint: "https://ce.vpce.example.com"},
		},
		{
			name:    "a cost explorer endpoint without provisional months",
			text:    "aws:\n  - cost_explorer_endpoint: https://ce.example.com\n",
			wantErr: `c.yml:2: aws entry "aws" sets cost_explorer_endpoint without provisional: true or allocate_by, which alone call Cost Explorer`,
		},
		{
			name:    "bad cost explorer endpoint",
			text:    "aws:\n  - provisional: true\n    cost_explorer_endpoint: ftp://ce.example.com\n",
			wantErr: "c.yml:3: aws.cost_explorer_endpoint must be an absolute http:// or https:// URL",
		},
		{
			name:    "unknown key",
			text:    "aws:\n  - role: x\n",
			wantErr: `c.yml:2: unknown field "role" in aws entry; known fields are name, partition, endpoint, profile, access_key_id, secret_access_key, secret_access_key_file, secret_access_key_env, role_arn, external_id, organizations, organizations_endpoint, provisional, cost_explorer_endpoint, allocate_by, allocate_top`,
		},
	}
}

// allocationCases are the entries' allocate_by and allocate_top.
func allocationCases() []configCase {
	return []configCase{
		{
			name: "allocation by a tag and an EKS namespace, without provisional months",
			text: "aws:\n  - allocate_by: [team, aws:eks:namespace]\n    allocate_top: 20\n    cost_explorer_endpoint: https://ce.vpce.example.com\n",
			want: awsp.Config{Name: "aws", Partition: "aws", Endpoint: awsp.EndpointAWS, AllocateBy: []string{"team", "aws:eks:namespace"},
				AllocateTop: 20, CostExplorerEndpoint: "https://ce.vpce.example.com"},
		},
		{
			name:    "a tag key longer than AWS allows",
			text:    "aws:\n  - allocate_by:\n      - team\n      - " + strings.Repeat("k", awsp.MaxTagKeyChars+1) + "\n",
			wantErr: "c.yml:4: aws.allocate_by has a key longer than 128 characters, the longest tag key AWS allows",
		},
		{
			name:    "a key twice",
			text:    "aws:\n  - allocate_by: [team, team]\n",
			wantErr: "c.yml:2: allocate_by lists a key twice",
		},
		{
			name:    "allocate_top out of range",
			text:    "aws:\n  - allocate_by: [team]\n    allocate_top: 0\n",
			wantErr: "c.yml:3: allocate_top must be between 1 and 1000",
		},
	}
}

func TestIdentity(t *testing.T) {
	c := awsp.Config{Name: "x", Partition: "aws", Endpoint: awsp.EndpointAWS, Profile: "p",
		RoleARN: "arn:aws:iam::123456789012:role/r", AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: canary}
	got := c.Identity()
	if want := "aws|aws|" + awsp.EndpointAWS + "|role=arn:aws:iam::123456789012:role/r|profile=p|key=AKIAIOSFODNN7EXAMPLE"; got != want {
		t.Errorf("identity %q, want %q", got, want)
	}
	if strings.Contains(got, canary) {
		t.Error("the identity holds the secret")
	}
}

// TestFeedsConfig checks that a source is a cost feed only with
// provisional months, and a tag feed only with allocate_by.
func TestFeedsConfig(t *testing.T) {
	isolate(t)
	for _, tt := range []struct {
		text       string
		cost, tags bool
		by         []string
	}{
		{"aws:\n  - {}\n", false, false, nil},
		{"aws:\n  - provisional: false\n", false, false, nil},
		{"aws:\n  - provisional: true\n", true, false, nil},
		{"aws:\n  - allocate_by: [team]\n", false, true, []string{"team"}},
		{"aws:\n  - provisional: true\n    allocate_by: [team, aws:eks:namespace]\n", true, true, []string{"team", "aws:eks:namespace"}},
	} {
		c, err := config.Parse([]byte(tt.text), "c.yml", func(string) string { return "" }, []provider.Plugin{awsp.Plugin()})
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Sources[0].Config.New(context.Background(), provider.Env{})
		if err != nil {
			t.Fatal(err)
		}
		_, cost := p.(provider.CostFeed)
		_, tags := p.(provider.TagFeed)
		if cost != tt.cost || tags != tt.tags {
			t.Errorf("%q: a cost feed: %v, a tag feed: %v; want %v, %v", tt.text, cost, tags, tt.cost, tt.tags)
		}
		if p.Name() != "aws" {
			t.Errorf("%q: name %q", tt.text, p.Name())
		}
		if a := c.Sources[0].Config.(provider.AllocatingSource).Allocation(); a.Top != provider.DefaultAllocationTop || !slices.Equal(a.By, tt.by) {
			t.Errorf("%q: allocation %+v, want by %v, top %d", tt.text, a, tt.by, provider.DefaultAllocationTop)
		}
	}
}
