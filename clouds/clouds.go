// Package clouds gives programs outside this module, such as the
// OpenTelemetry Collector receiver, the list of clouds the exporter
// supports. The list itself stays in internal/clouds, so that adding a
// cloud is still one line there.
package clouds

import (
	"github.com/cloudcarbon/cloudcarbon_exporter/internal/clouds"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// All returns every cloud's plug-in, in the order of the configuration
// file's sections.
func All() []provider.Plugin { return clouds.All() }
