package cloudcarbonreceiver

import (
	"strings"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// convention says how a cloud's series map to the resource attributes of
// the OpenTelemetry cloud conventions. The README's attribute table
// states the same; a test keeps the two in step.
type convention struct {
	// provider is the cloud.provider value.
	provider string
	// region reports whether a location label is one of the cloud's
	// regions, and so a cloud.region; nil: the cloud's locations never
	// are.
	region func(location string) bool
}

// conventionOf returns the convention of the cloud whose plug-in is
// named prov. A cloud the table does not know gets its plug-in name as
// cloud.provider and no cloud.region, so that adding a cloud needs no
// edit here.
func conventionOf(prov string) convention {
	switch prov {
	case "gcp":
		// Regions are "us-central1"; "us", "eu" and "nam4" are multi- and
		// dual-regions.
		return convention{provider: "gcp", region: hyphenated}
	case "azure":
		// ARM names: "westeurope", "eastus2".
		return convention{provider: "azure", region: named}
	case "ibm":
		// The Carbon Calculator names cities ("dallas"), not IBM
		// Cloud's region ids ("us-south").
		return convention{provider: "ibm_cloud"}
	case "aws":
		return convention{provider: "aws", region: named}
	case "oci":
		return convention{provider: "oracle_cloud", region: named}
	case "scaleway":
		// The convention lists no value for Scaleway.
		return convention{provider: "scaleway", region: named}
	}
	return convention{provider: prov}
}

// named accepts every location but the placeholders the plug-ins use for
// rows without a region.
func named(location string) bool {
	switch location {
	case "", "unknown", "global":
		return false
	}
	return true
}

func hyphenated(location string) bool { return named(location) && strings.Contains(location, "-") }

// accountID returns the cloud.account.id of an account label: none for
// the placeholder of rows a provider attributes to no account.
func accountID(account string) (string, bool) {
	return account, account != "" && account != provider.AccountPlaceholder
}
