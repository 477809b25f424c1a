package provider

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// TagFeed is a source whose cost carries the user's tags or labels (GCP
// labels, AWS cost allocation tags, Azure tags, OCI tags), or a dimension
// of its own that splits an account (IBM Cloud's resource groups): the
// Provider of a source whose configuration sets allocate_by implements it.
// The share of a tag's value in a cell's weight allocates the provider's
// emissions of that cell.
type TagFeed interface {
	// TagCosts returns the weight of each of months, the current one to
	// date, grouped as Costs groups cost and, in addition, by the value
	// of key. A record carries Cost (or, for a dimension of the carbon
	// data itself, the emissions the provider reports per value) and its
	// Value; weight that carries no such tag has Value "". A label the
	// API cannot group by together with the tag is "" in every record
	// (IBM's enterprise cost has no service, AWS cost no location): the
	// shares then apply to every cell it spans. A key that no cost
	// carries is no error: every record has Value "". Errors are *Error
	// as Fetch's are.
	TagCosts(ctx context.Context, months []Month, key string) ([]TagCost, error)
}

// TagCost is the weight of one value of a tag in one cell and month.
type TagCost struct {
	Record
	// Value is the tag's value, "" for weight without the tag.
	Value string
}

// AllocatingSource is a SourceConfig whose entry may set allocate_by:
// the tag or label keys by which its emissions are allocated.
type AllocatingSource interface {
	Allocation() Allocation
}

// Allocation is what an entry asks of allocation.
type Allocation struct {
	// By are the tag or label keys, in the provider's spelling.
	By []string
	// Top bounds the values kept per key, by weight; the rest are folded
	// into one value. 0 takes DefaultAllocationTop.
	Top int
}

const (
	// DefaultAllocationTop is allocate_top's default.
	DefaultAllocationTop = 100
	// MaxAllocationTop bounds allocate_top, which multiplies series.
	MaxAllocationTop = 1000
	// MaxAllocationKeys bounds allocate_by: each key is a read of the
	// cost per refresh and a set of series.
	MaxAllocationKeys = 10
	// maxTagKeyBytes is the longest key any of the clouds allows (Azure
	// and OCI: 512 characters, GCP: 63, AWS: 128), in bytes.
	maxTagKeyBytes = 512
)

// CheckAllocation validates an entry's allocate_by and allocate_top and
// sets the default. keys of a cloud whose allocation keys are fixed (IBM
// Cloud: resource_group) lists them; nil takes any tag key.
func CheckAllocation(v Checker, a *Allocation, keys []string) {
	if v.Has("allocate_top") && (a.Top < 1 || a.Top > MaxAllocationTop) {
		v.Errorf("allocate_top", "allocate_top must be between 1 and %d", MaxAllocationTop)
	}
	if a.Top == 0 {
		a.Top = DefaultAllocationTop
	}
	if len(a.By) > MaxAllocationKeys {
		v.Errorf("allocate_by", "allocate_by lists %d keys; at most %d, each a read of the cost per refresh", len(a.By), MaxAllocationKeys)
		return
	}
	seen := make(map[string]bool, len(a.By))
	for i, k := range a.By {
		key := fmt.Sprintf("allocate_by.%d", i)
		switch {
		case k == "" || strings.TrimSpace(k) != k:
			v.Errorf(key, "allocate_by has an empty key or one with leading or trailing spaces")
		case len(k) > maxTagKeyBytes || !utf8.ValidString(k) || strings.ContainsFunc(k, isControl):
			v.Errorf(key, "allocate_by has a key longer than %d bytes or with control characters", maxTagKeyBytes)
		case keys != nil && !slices.Contains(keys, k):
			v.Errorf(key, "allocate_by takes %s", strings.Join(keys, ", "))
		case seen[k]:
			v.Errorf(key, "allocate_by lists a key twice")
		}
		seen[k] = true
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
