package scaleway_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/scaleway"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/scaleway/scalewayfake"
)

func parse(t *testing.T, text string) (*config.Config, error) {
	t.Helper()
	getenv := func(k string) string {
		switch k {
		case "SCW_TEST_SECRET":
			return canary
		case "SCW_TEST_BAD_SECRET":
			return "not-a-uuid-" + canary
		}
		return ""
	}
	return config.Parse([]byte(text), "c.yml", getenv, []provider.Plugin{scaleway.Plugin()})
}

// configCase is a scaleway section and what the parser makes of it.
type configCase struct {
	name, text string
	want       scaleway.Config
	wantErr    string
}

// configCases are the section's defaults, and a mistake of each kind;
// keyFile holds the secret key.
func configCases(keyFile string) []configCase {
	return []configCase{
		{
			name: "defaults: the SDK's profile and environment",
			text: "scaleway:\n  - {}\n",
			want: scaleway.Config{Name: "scaleway"},
		},
		{
			name: "a profile, an organization and projects",
			text: "scaleway:\n  - name: carbon\n    profile: carbon-reader\n    organization_id: " + org + "\n    project_ids: [" + projA + ", " + projB + "]\n",
			want: scaleway.Config{Name: "carbon", Profile: "carbon-reader", OrganizationID: org, ProjectIDs: []string{projA, projB}},
		},
		{
			name: "a key from the environment: the public API by default",
			text: "scaleway:\n  - organization_id: " + org + "\n    access_key: " + accessKey + "\n    secret_key_env: SCW_TEST_SECRET\n",
			want: scaleway.Config{Name: "scaleway", OrganizationID: org, AccessKey: accessKey, SecretKey: canary,
				SecretKeyEnv: "SCW_TEST_SECRET", APIURL: scaleway.DefaultAPIURL},
		},
		{
			name: "a key from a file, a private endpoint",
			text: "scaleway:\n  - organization_id: " + org + "\n    access_key: " + accessKey + "\n    secret_key_file: " + keyFile + "\n    api_url: https://api.example.com\n",
			want: scaleway.Config{Name: "scaleway", OrganizationID: org, AccessKey: accessKey, SecretKey: canary,
				SecretKeyFile: keyFile, APIURL: "https://api.example.com"},
		},
		{
			name:    "an access key without its secret",
			text:    "scaleway:\n  - name: prod\n    organization_id: " + org + "\n    access_key: " + accessKey + "\n",
			wantErr: `c.yml:2: scaleway entry "prod" has no secret key; set one of secret_key_env, secret_key_file or secret_key`,
		},
		{
			name:    "a secret without its access key",
			text:    "scaleway:\n  - name: prod\n    organization_id: " + org + "\n    secret_key_env: SCW_TEST_SECRET\n",
			wantErr: `c.yml:2: scaleway entry "prod" sets a secret key but no access_key; set both (the SDK needs the access key beside the secret key), or neither to use the Scaleway SDK's profile and SCW_* environment variables`,
		},
		{
			name:    "a malformed access key",
			text:    "scaleway:\n  - organization_id: " + org + "\n    access_key: scw-lower\n    secret_key_env: SCW_TEST_SECRET\n",
			wantErr: "c.yml:3: scaleway.access_key must be SCW followed by 17 capital letters and digits, such as SCWXXXXXXXXXXXXXXXXX",
		},
		{
			name:    "a malformed secret key",
			text:    "scaleway:\n  - organization_id: " + org + "\n    access_key: " + accessKey + "\n    secret_key_env: SCW_TEST_BAD_SECRET\n",
			wantErr: "c.yml:4: scaleway.secret_key_env must give the secret key as the console shows it, a UUID such as 11111111-2222-3333-4444-555555555555 (the value is not shown)",
		},
		{
			name:    "a key and a profile",
			text:    "scaleway:\n  - organization_id: " + org + "\n    access_key: " + accessKey + "\n    secret_key_env: SCW_TEST_SECRET\n    profile: x\n",
			wantErr: `c.yml:5: scaleway entry "scaleway" sets both profile and an API key; set one: a key in the entry needs no profile`,
		},
		{
			name:    "a key without an organization",
			text:    "scaleway:\n  - access_key: " + accessKey + "\n    secret_key_env: SCW_TEST_SECRET\n",
			wantErr: `c.yml:2: scaleway entry "scaleway" has no organization_id; with an API key in the entry, set the organization it reads`,
		},
		{
			name:    "a malformed organization",
			text:    "scaleway:\n  - organization_id: my-org\n",
			wantErr: "c.yml:2: scaleway.organization_id must be a UUID such as 11111111-2222-3333-4444-555555555555, as the console shows it",
		},
		{
			name:    "a malformed project",
			text:    "scaleway:\n  - project_ids:\n      - " + projA + "\n      - default\n",
			wantErr: "c.yml:4: scaleway.project_ids must be project UUIDs such as 11111111-2222-3333-4444-555555555555; entry 2 is not",
		},
		{
			name:    "a project twice",
			text:    "scaleway:\n  - project_ids:\n      - " + projA + "\n      - " + strings.ToUpper(projA) + "\n",
			wantErr: "c.yml:4: scaleway.project_ids lists " + strings.ToUpper(projA) + " twice (entries 1 and 2)",
		},
		{
			name:    "a malformed profile",
			text:    "scaleway:\n  - profile: my profile\n",
			wantErr: "c.yml:2: scaleway.profile must be a profile name of the Scaleway configuration file: letters, digits, '_', '.' and '-'",
		},
		{
			name:    "a bad api_url",
			text:    "scaleway:\n  - api_url: https://user:pw@api.example.com\n",
			wantErr: "c.yml:2: scaleway.api_url must not contain a user name or password",
		},
		{
			name:    "an unknown key",
			text:    "scaleway:\n  - region: fr-par\n",
			wantErr: `c.yml:2: unknown field "region" in scaleway entry; known fields are name, organization_id, project_ids, access_key, secret_key, secret_key_file, secret_key_env, profile, api_url, provisional`,
		},
	}
}

// TestConfig checks the scaleway section as users write it, through the
// real configuration parser: defaults, and a clear message at the right
// line for every mistake.
func TestConfig(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(keyFile, []byte(canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range configCases(keyFile) {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(t, tt.text)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err %v\nwant %s", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), canary) {
					t.Errorf("the secret is in the message: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := *c.Sources[0].Config.(*scaleway.Config)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, tt.want)
			}
			if s := c.String(); strings.Contains(s, canary) {
				t.Errorf("the printed configuration holds the secret:\n%s", s)
			}
			if id := got.Identity(); strings.Contains(id, canary) {
				t.Errorf("the identity holds the secret: %s", id)
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	c := scaleway.Config{Name: "x", OrganizationID: org, ProjectIDs: []string{projB, strings.ToUpper(projA)},
		AccessKey: accessKey, SecretKey: canary, APIURL: scaleway.DefaultAPIURL}
	want := "scaleway|" + scaleway.DefaultAPIURL + "|org=" + org + "|projects=" + projA + "," + projB + "|profile="
	if got := c.Identity(); got != want {
		t.Errorf("identity %q, want %q", got, want)
	}
	sdk := scaleway.Config{Name: "x", Profile: "carbon"}
	if got, want := sdk.Identity(), "scaleway|sdk|org=sdk|projects=|profile=carbon"; got != want {
		t.Errorf("identity %q, want %q", got, want)
	}
}

// TestSchedule checks that the plug-in, the provider and the fake, which
// keeps its own reading of Scaleway's publication, expect the same latest
// month.
func TestSchedule(t *testing.T) {
	isolate(t)
	p, err := scaleway.New(scaleway.Options{OrganizationID: org, AccessKey: accessKey, SecretKey: canary})
	if err != nil {
		t.Fatal(err)
	}
	if plugin := scaleway.Plugin(); plugin.Schedule != p.Schedule() {
		t.Errorf("the plug-in's schedule %+v differs from the provider's %+v", plugin.Schedule, p.Schedule())
	}
	for now := time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC); now.Year() < 2027; now = now.Add(13 * time.Hour) {
		if got, want := p.Schedule().LatestPublished(now), scalewayfake.LatestPublished(now); got != want {
			t.Fatalf("at %s the provider expects %s as the latest month, the fake %s", now, got, want)
		}
	}
}
