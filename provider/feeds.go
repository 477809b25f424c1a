package provider

// FeedingProvider is a Provider that can read cost and tag weights too.
type FeedingProvider interface {
	Provider
	CostFeed
	TagFeed
}

// Feeds returns p with only the feeds its entry asks for: the cost feed
// when cost is set (provisional months), the tag feed when tags is set
// (allocate_by). What reads a source tells what to read by the feeds its
// Provider implements, so a feed the entry did not ask for is never
// called, nor billed where the provider charges per request.
func Feeds(p FeedingProvider, cost, tags bool) Provider {
	switch {
	case cost && tags:
		return p
	case cost:
		return costOnly{p, p}
	case tags:
		return tagsOnly{p, p}
	}
	return emissionsOnly{p}
}

// emissionsOnly, costOnly and tagsOnly are a provider's methods less the
// feeds its entry does not ask for.
type (
	emissionsOnly struct{ Provider }
	costOnly      struct {
		Provider
		CostFeed
	}
	tagsOnly struct {
		Provider
		TagFeed
	}
)
