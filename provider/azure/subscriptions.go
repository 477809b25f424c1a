package azure

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armsubscriptions"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// subscription is a subscription to report on, with what listing told us.
type subscription struct {
	id, name, tenant string
}

// accounts describes every subscription for the _info metric.
func (p *Provider) accounts(subs []subscription) []provider.Account {
	out := make([]provider.Account, 0, len(subs))
	for _, s := range subs {
		a := provider.Account{Provider: Name, ID: s.id, Name: s.name, ParentID: cmp.Or(s.tenant, p.opts.TenantID)}
		if a.ParentID != "" {
			a.ParentType = ParentTypeTenant
		}
		out = append(out, a)
	}
	return out
}

// subscriptions returns the configured subscriptions and, when listing is
// enabled and list is true, those the identity can list, sorted by id.
func (p *Provider) subscriptions(ctx context.Context, list bool) ([]subscription, error) {
	byID := make(map[string]subscription, len(p.subs))
	for _, id := range p.subs {
		byID[id] = subscription{id: id}
	}
	if p.opts.ListSubscriptions && list {
		listed, err := p.listSubscriptions(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range listed {
			byID[s.id] = s
		}
		if len(byID) == 0 {
			return nil, p.fail(provider.ReasonPermission, 0, errors.New(
				"azure: the identity can list no subscriptions; grant it Reader or Carbon Optimization Reader on the subscriptions to report, or configure their ids"))
		}
	}
	out := make([]subscription, 0, len(byID))
	for _, s := range byID {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b subscription) int { return cmp.Compare(a.id, b.id) })
	return out, nil
}

// Names of configured subscriptions. Listing (ListSubscriptions) names
// every subscription it finds; subscriptions configured by id get their
// names from the same listing, filtered to them: one request per 100
// subscriptions the identity can read, against one per subscription for
// GET /subscriptions/{id}. Names rarely change, so a listing is kept for
// namesTTL; one the identity may not make is not tried again before
// namesRetry, so that a reader-less identity costs no request per refresh.
const (
	namesTTL   = 24 * time.Hour
	namesRetry = time.Hour
)

// subscriptionNames is what the last names listing found.
type subscriptionNames struct {
	byID   map[string]subscription
	next   time.Time // when to list again
	warned bool      // a failed listing was logged
}

// withNames fills in the names (and tenants) of subs that lack them, from
// the kept listing or a new one. A failure leaves them without names and
// does not fail the fetch: names are for the _info metric only.
func (p *Provider) withNames(ctx context.Context, subs []subscription) []subscription {
	if p.opts.ListSubscriptions || !slices.ContainsFunc(subs, func(s subscription) bool { return s.name == "" }) {
		// Listing already named every subscription it could.
		return subs
	}
	names := p.subscriptionNames(ctx)
	for i, s := range subs {
		if n, ok := names[s.id]; ok && s.name == "" {
			subs[i].name = n.name
			subs[i].tenant = cmp.Or(s.tenant, n.tenant)
		}
	}
	return subs
}

func (p *Provider) subscriptionNames(ctx context.Context) map[string]subscription {
	p.mu.Lock()
	if time.Now().Before(p.names.next) {
		defer p.mu.Unlock()
		return p.names.byID
	}
	p.mu.Unlock()

	listed, err := p.listSubscriptions(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if ctx.Err() != nil {
			return p.names.byID // the fetch ended: try again at the next
		}
		p.names.next = time.Now().Add(namesRetry)
		if !p.names.warned {
			p.names.warned = true
			p.log.Warn("Cannot list subscriptions for their names; the account info metric shows subscription ids only",
				"err", err, "hint", "grant the identity Reader (Microsoft.Resources/subscriptions/read) on the subscriptions to see their names")
		}
		return p.names.byID // older names, if any, are still good
	}
	byID := make(map[string]subscription, len(listed))
	for _, s := range listed {
		byID[s.id] = s
	}
	p.names = subscriptionNames{byID: byID, next: time.Now().Add(namesTTL), warned: p.names.warned}
	return byID
}

// listSubscriptions pages through GET /subscriptions. The pager would
// follow any nextLink, bearer token included; we stop at a link that
// leaves the configured ARM host.
func (p *Provider) listSubscriptions(ctx context.Context) ([]subscription, error) {
	const what = "GET /subscriptions"
	armHost := ""
	if u, err := url.Parse(p.cloud.Services[cloud.ResourceManager].Endpoint); err == nil {
		armHost = u.Host
	}
	var out []subscription
	err := p.call(ctx, what, func(ctx context.Context, cl *clients) error {
		out = out[:0]
		pager := cl.subs.NewListPager(nil)
		for n := 0; pager.More(); n++ {
			if n >= maxPages {
				return fmt.Errorf("more than %d pages", maxPages)
			}
			page, err := pager.NextPage(ctx)
			if err != nil {
				return err
			}
			if err := httpx.Page(ctx, len(page.Value)); err != nil {
				return err
			}
			for _, s := range page.Value {
				if sub, ok := listedSubscription(s); ok {
					out = append(out, sub)
				}
			}
			if page.NextLink != nil && *page.NextLink != "" {
				u, err := url.Parse(*page.NextLink)
				if err != nil || !strings.EqualFold(u.Host, armHost) {
					return fmt.Errorf("nextLink leaves the resource manager endpoint %s", armHost)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.log.DebugContext(ctx, "azure listed subscriptions", "count", len(out))
	return out, nil
}

// listedSubscription reads one listed subscription. Deleted subscriptions
// have no data to report; disabled ones keep their history, so they stay.
func listedSubscription(s *armsubscriptions.Subscription) (subscription, bool) {
	if s == nil {
		return subscription{}, false
	}
	id := ""
	if s.SubscriptionID != nil {
		id = *s.SubscriptionID
	} else if s.ID != nil {
		id = strings.TrimPrefix(strings.ToLower(*s.ID), "/subscriptions/")
	}
	id = strings.ToLower(strings.TrimSpace(id))
	if id == "" || (s.State != nil && *s.State == armsubscriptions.SubscriptionStateDeleted) {
		return subscription{}, false
	}
	sub := subscription{id: id}
	if s.DisplayName != nil {
		sub.name = strings.TrimSpace(*s.DisplayName)
	}
	if s.TenantID != nil {
		sub.tenant = strings.ToLower(strings.TrimSpace(*s.TenantID))
	}
	return sub, true
}
