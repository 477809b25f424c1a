package oci

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/usageapi"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// FreeformNamespace is the tag namespace the Usage API and the Console
// give free-form tags, which belong to no namespace of the tenancy: an
// allocate_by key without a period is a free-form tag's, asked for under
// this namespace.
const FreeformNamespace = "None"

// maxTagValueBytes bounds a tag value as the records carry it: OCI's
// tag values are at most 256 characters.
const maxTagValueBytes = 256

// tagKey is an allocate_by key as the Usage API names it.
type tagKey struct{ namespace, key string }

// parseTagKey reads an allocate_by key: "Namespace.key" for a defined
// tag, "key" for a free-form one. OCI allows no period in a namespace or
// a key, so the period splits them unambiguously.
func parseTagKey(s string) (tagKey, error) {
	ns, key, defined := strings.Cut(s, ".")
	switch {
	case !defined && s != "":
		return tagKey{namespace: FreeformNamespace, key: s}, nil
	case ns == "" || key == "" || strings.Contains(key, "."):
		return tagKey{}, errors.New("an OCI tag is Namespace.key for a defined tag or key for a free-form tag; namespaces and keys hold no period")
	}
	return tagKey{namespace: ns, key: key}, nil
}

func (k tagKey) String() string { return k.namespace + "." + k.key }

// wire is the tag as RequestSummarizedUsages's groupByTag names it.
func (k tagKey) wire() usageapi.Tag {
	return usageapi.Tag{Namespace: common.String(k.namespace), Key: common.String(k.key)}
}

// names reports whether an item's tag names k. OCI compares namespaces
// and keys regardless of case; an item that leaves them out names the
// tag the query grouped by.
func (k tagKey) names(namespace, key string) bool {
	return (namespace == "" || strings.EqualFold(namespace, k.namespace)) && (key == "" || strings.EqualFold(key, k.key))
}

// valueOf returns the value of k among an item's tags: "" when the item
// carries no value of it (no tags, or a null or blank value), which is
// cost without the tag.
func (k tagKey) valueOf(tags []usageapi.Tag) (string, error) {
	var value string
	found := false
	for _, t := range tags {
		ns, key := strings.TrimSpace(deref(t.Namespace)), strings.TrimSpace(deref(t.Key))
		switch {
		case !k.names(ns, key):
			return "", fmt.Errorf("an item carries the tag %q, which the query did not group by", provider.Truncate(ns+"."+key, 128))
		case found:
			return "", errors.New("an item carries the tag it is grouped by twice")
		}
		found = true
		value = provider.Truncate(strings.TrimSpace(deref(t.Value)), maxTagValueBytes)
	}
	return value, nil
}

// TagCosts implements provider.TagFeed: the cost of each of months, the
// current one to date, per compartment path, service and region exactly
// as Costs keys it, and per value of key, "" for the cost without it.
//
// key is "Namespace.key" for a defined tag and "key" for a free-form one
// (under FreeformNamespace). Request plan: Costs's, one
// RequestSummarizedUsages query per run of at most a year of months, plus
// one per further page, each also grouped by the tag (groupByTag, which
// takes one tag): every label at full granularity, at no charge and with
// the same permission. A key that no cost carries gives every record the
// value "".
func (p *Provider) TagCosts(ctx context.Context, months []provider.Month, key string) ([]provider.TagCost, error) {
	tag, err := parseTagKey(key)
	if err != nil {
		// A key is a name, not a secret: it may be quoted.
		return nil, p.fail(provider.ReasonBadRequest, 0, fmt.Errorf("oci: allocate_by key %q: %w", provider.Truncate(key, 128), err))
	}
	d, err := p.readCost(ctx, months, &tag)
	if err != nil {
		return nil, err
	}
	return d.sorted(), nil
}
