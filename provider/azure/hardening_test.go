package azure_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure/azurefake"
)

// TestDenialReasonCutOnRuneBoundary: a long denial reason is bounded
// without splitting a character, so the access-denied series keeps a
// valid label value.
func TestDenialReasonCutOnRuneBoundary(t *testing.T) {
	ds := smallDataset()
	ds.Subscriptions[1].Denied = true
	ds.Subscriptions[1].DenialReason = strings.Repeat("a", 511) + "é and more"
	e := newEnv(t, ds)
	res := fetch(t, e.provider(t), mar)
	if len(res.Denied) != 1 {
		t.Fatalf("denied = %+v", res.Denied)
	}
	reason := res.Denied[0].Reason
	if !utf8.ValidString(reason) {
		t.Errorf("denial reason is not valid UTF-8: %q", reason)
	}
	if want := strings.Repeat("a", 511) + "…"; reason != want {
		t.Errorf("denial reason = %q, want %q", reason, want)
	}
}

// TestExplicitSubscriptionNames: subscriptions configured by id get their
// display names when the identity may list them; when it may not, the
// fetch still succeeds, without names, and the names are not asked for
// again at every refresh.
func TestExplicitSubscriptionNames(t *testing.T) {
	want := []provider.Account{
		{Provider: "azure", ID: sub1, Name: "Production", ParentType: "tenant", ParentID: tenant},
		{Provider: "azure", ID: sub2, Name: "Development", ParentType: "tenant", ParentID: tenant},
	}
	t.Run("readable", func(t *testing.T) {
		ds := smallDataset()
		// Listed but not configured: not reported.
		ds.Subscriptions = append(ds.Subscriptions, azurefake.Subscription{ID: sub3, DisplayName: "Sandbox"})
		e := newEnv(t, ds)
		p := e.provider(t, func(o *azure.Options) { o.Subscriptions = []string{sub1, sub2} })
		for range 2 {
			res := fetch(t, p, mar)
			if !reflect.DeepEqual(res.Accounts, want) {
				t.Errorf("accounts:\n got %+v\nwant %+v", res.Accounts, want)
			}
		}
		if n := e.fake.Requests(azurefake.OpSubscriptions); n != 1 {
			t.Errorf("subscription requests = %d, want 1: names are kept", n)
		}
	})
	t.Run("denied", func(t *testing.T) {
		e := newEnv(t, smallDataset())
		e.fake.Inject(azurefake.OpSubscriptions, azurefake.Fault{Status: http.StatusForbidden, Times: 10,
			Body: armErr("AuthorizationFailed", "The client does not have authorization to perform action 'Microsoft.Resources/subscriptions/read'.")})
		p := e.provider(t)
		for range 2 {
			res := fetch(t, p, mar)
			if len(res.Records) != 12 {
				t.Errorf("records = %d, want 12", len(res.Records))
			}
			for _, a := range res.Accounts {
				if a.Name != "" {
					t.Errorf("account %+v has a name it cannot have read", a)
				}
			}
			if len(res.Accounts) != 2 {
				t.Errorf("accounts = %+v", res.Accounts)
			}
		}
		if n := e.fake.Requests(azurefake.OpSubscriptions); n != 1 {
			t.Errorf("subscription requests = %d, want 1: a denied lookup is not repeated at every refresh", n)
		}
	})
}
