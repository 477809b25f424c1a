package azure_test

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure"
)

// checker is a provider.Checker that records what Check reports, as
// "key: message". It resolves nothing: the configuration's own checker
// does, and is tested with it.
type checker struct {
	has     map[string]bool
	errs    []string
	secrets []string // keys of the secrets Check asked for
	files   []string // keys of the files Check asked for
}

func (c *checker) Errorf(key, format string, args ...any) {
	c.errs = append(c.errs, key+": "+fmt.Errorf(format, args...).Error())
}

func (c *checker) Has(key string) bool { return c.has[key] }

func (c *checker) Secret(r provider.SecretRef, required bool) {
	c.secrets = append(c.secrets, r.Key)
	if required && *r.Value == "" && r.File == "" && r.Env == "" {
		c.Errorf("", "no %s", r.What)
	}
}

func (c *checker) File(key string, _ *string) { c.files = append(c.files, key) }

func TestConfigCheck(t *testing.T) {
	const sub = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
	tests := []struct {
		name string
		in   azure.Config
		has  []string
		// want, when set, is the whole entry after Check.
		want *azure.Config
		errs []string
	}{{
		name: "defaults",
		in:   azure.Config{Name: "azure", ListSubscriptions: true},
		want: &azure.Config{Name: "azure", Credential: "default", Cloud: "public", ListSubscriptions: true, RequestBudget: 500, AllocateTop: 100},
	}, {
		name: "a request budget of 0 in the file is not defaulted",
		in:   azure.Config{Name: "azure", ListSubscriptions: true},
		has:  []string{"request_budget"},
		errs: []string{"request_budget: azure.request_budget must be at least 1"},
	}, {
		name: "client_secret without client_id",
		in:   azure.Config{Name: "azure", Credential: "client_secret", TenantID: "contoso.onmicrosoft.com", ClientSecret: "s", Subscriptions: []string{sub}},
		has:  []string{"client_secret"},
		errs: []string{`: azure entry "azure" has credential client_secret but no client_id; set the application (client) id of the app registration`},
	}, {
		name: "default credential given a secret it does not use",
		in:   azure.Config{Name: "azure", ClientSecretEnv: "AZURE_SECRET", ListSubscriptions: true},
		has:  []string{"client_secret_env"},
		errs: []string{`client_secret_env: azure entry "azure" sets client_secret_env, which credential default does not use`},
	}, {
		name: "unknown credential",
		in:   azure.Config{Name: "azure", Credential: "Client_Secret", ListSubscriptions: true},
		errs: []string{"credential: azure.credential must be default, client_secret or client_certificate"},
	}, {
		name: "unknown cloud and a plain http endpoint",
		in:   azure.Config{Name: "azure", Cloud: "azurecloud", ResourceManagerEndpoint: "http://127.0.0.1:8443", ListSubscriptions: true},
		errs: []string{
			"cloud: azure.cloud must be public, china or usgovernment",
			"resource_manager_endpoint: azure.resource_manager_endpoint must be an https:// URL: the Azure SDK sends tokens only over TLS",
		},
	}, {
		name: "subscriptions are lower-cased and checked",
		in:   azure.Config{Name: "tenant-a", Subscriptions: []string{"0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9", "prod", sub}},
		want: &azure.Config{Name: "tenant-a", Credential: "default", Cloud: "public", RequestBudget: 500,
			Subscriptions: []string{sub, "prod", sub}, AllocateTop: 100},
		errs: []string{
			"subscriptions.1: azure.subscriptions entry 2 is not a subscription id (a GUID such as 00000000-0000-0000-0000-000000000000)",
			"subscriptions.2: azure.subscriptions lists " + sub + " twice",
		},
	}, {
		name: "no subscriptions",
		in:   azure.Config{Name: "tenant-a"},
		errs: []string{`: azure entry "tenant-a" has no subscriptions; list them in subscriptions or set list_subscriptions: true`},
	}, {
		name: "client_certificate",
		in: azure.Config{Name: "azure", Credential: "client_certificate", TenantID: "t", ClientID: "c",
			CertificateFile: "cert.pem", Subscriptions: []string{sub}},
		has: []string{"certificate_file"},
		want: &azure.Config{Name: "azure", Credential: "client_certificate", TenantID: "t", ClientID: "c",
			CertificateFile: "cert.pem", Cloud: "public", Subscriptions: []string{sub}, RequestBudget: 500, AllocateTop: 100},
	}, {
		name: "allocation by tag keys, a Kubernetes namespace's among them",
		in:   azure.Config{Name: "azure", ListSubscriptions: true, AllocateBy: []string{"team", "kubernetes.io-created-for-pvc-namespace"}, AllocateTop: 20},
		has:  []string{"allocate_by", "allocate_top"},
		want: &azure.Config{Name: "azure", Credential: "default", Cloud: "public", ListSubscriptions: true, RequestBudget: 500,
			AllocateBy: []string{"team", "kubernetes.io-created-for-pvc-namespace"}, AllocateTop: 20},
	}, {
		name: "allocation keys and top checked",
		in:   azure.Config{Name: "azure", ListSubscriptions: true, AllocateBy: []string{"team", " team", "team", "Team"}, AllocateTop: 5000},
		has:  []string{"allocate_by", "allocate_top"},
		errs: []string{
			"allocate_top: allocate_top must be between 1 and 1000",
			"allocate_by.1: allocate_by has an empty key or one with leading or trailing spaces",
			"allocate_by.2: allocate_by lists a key twice",
			"allocate_by.3: allocate_by lists a key twice: Azure tag names ignore case",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &checker{has: map[string]bool{}}
			for _, k := range tt.has {
				c.has[k] = true
			}
			cfg := tt.in
			cfg.Subscriptions = slices.Clone(tt.in.Subscriptions)
			cfg.Check(c)
			if !reflect.DeepEqual(c.errs, tt.errs) {
				t.Errorf("errors:\n got %q\nwant %q", c.errs, tt.errs)
			}
			if tt.want != nil && !reflect.DeepEqual(cfg, *tt.want) {
				t.Errorf("after Check:\n got %+v\nwant %+v", cfg, *tt.want)
			}
		})
	}
}

// TestConfigCheckDelegates checks that secrets and the certificate go to
// the Checker, which resolves them and hashes the file.
func TestConfigCheckDelegates(t *testing.T) {
	for _, tt := range []struct {
		cfg            azure.Config
		secrets, files []string
	}{
		{azure.Config{Credential: "client_secret"}, []string{"client_secret"}, nil},
		{azure.Config{Credential: "client_certificate"}, []string{"certificate_password"}, []string{"certificate_file"}},
		{azure.Config{}, nil, nil},
	} {
		c := &checker{}
		tt.cfg.Check(c)
		if !reflect.DeepEqual(c.secrets, tt.secrets) || !reflect.DeepEqual(c.files, tt.files) {
			t.Errorf("credential %q: secrets %q, files %q; want %q, %q", tt.cfg.Credential, c.secrets, c.files, tt.secrets, tt.files)
		}
	}
}

// TestConfigIdentity pins the identity format: state files written by
// earlier releases are reused only while it matches.
func TestConfigIdentity(t *testing.T) {
	c := azure.Config{Cloud: "public", ResourceManagerEndpoint: "https://arm.example", TenantID: "t",
		Subscriptions: []string{"b", "a"}, ListSubscriptions: true}
	if got, want := c.Identity(), "azure|public|https://arm.example|tenant=t|subscriptions=a,b|list=true"; got != want {
		t.Errorf("Identity() = %q, want %q", got, want)
	}
	if !reflect.DeepEqual(c.Subscriptions, []string{"b", "a"}) {
		t.Errorf("Identity reordered the subscriptions: %q", c.Subscriptions)
	}
}

// TestConfigAllocation: the entry's allocate_by and allocate_top, the
// default written back by Check, are what the exporter allocates by.
func TestConfigAllocation(t *testing.T) {
	c := azure.Config{Name: "azure", ListSubscriptions: true, AllocateBy: []string{"team"}}
	c.Check(&checker{has: map[string]bool{"allocate_by": true}})
	var src provider.SourceConfig = &c
	a, ok := src.(provider.AllocatingSource)
	if !ok {
		t.Fatal("the azure entry is no provider.AllocatingSource")
	}
	if got := a.Allocation(); !reflect.DeepEqual(got, provider.Allocation{By: []string{"team"}, Top: provider.DefaultAllocationTop}) {
		t.Errorf("Allocation() = %+v", got)
	}
}
