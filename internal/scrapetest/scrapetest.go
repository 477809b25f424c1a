// Package scrapetest lets tests compare what a /metrics handler serves with
// testutil's expectations: it parses the served text back into metric
// families, so that the bytes on the wire are what is checked.
package scrapetest

import (
	"bytes"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Gatherer gathers by scraping H.
type Gatherer struct{ H http.Handler }

// Body returns what a plain GET of H serves.
func (g Gatherer) Body() []byte {
	rec := httptest.NewRecorder()
	g.H.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.Bytes()
}

// Gather implements prometheus.Gatherer.
func (g Gatherer) Gather() ([]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(g.Body()))
	if err != nil {
		return nil, err
	}
	out := make([]*dto.MetricFamily, 0, len(fams))
	for _, name := range slices.Sorted(maps.Keys(fams)) {
		out = append(out, fams[name])
	}
	return out, nil
}
