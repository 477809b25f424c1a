// Package clouds is the list of the clouds the exporter supports. Adding a
// cloud is one package under provider/ and one line here; nothing else in
// the exporter names a cloud.
package clouds

import (
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/aws"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/scaleway"
)

// All returns every cloud's plug-in, in the order of the configuration
// file's sections.
func All() []provider.Plugin {
	return []provider.Plugin{
		gcp.Plugin(),
		azure.Plugin(),
		ibm.Plugin(),
		aws.Plugin(),
		oci.Plugin(),
		scaleway.Plugin(),
	}
}
