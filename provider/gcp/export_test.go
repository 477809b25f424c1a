package gcp

import (
	"cloud.google.com/go/bigquery"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// DecodeRows loads rows, in the values the BigQuery client decodes an
// answer's rows into, as the billing or the carbon query's rows, and
// builds the result for months as Fetch does: the provider's whole
// decoding of an answer, without a client.
func DecodeRows(billing bool, schema bigquery.Schema, rows [][]bigquery.Value, months []provider.Month) (provider.Result, error) {
	p := &Provider{
		carbon:  tableRef{"test-project", "carbon", "carbon_footprint"},
		billing: &tableRef{"test-project", "billing", "gcp_billing_export_v1_012345_6789AB_CDEF01"},
	}
	if billing {
		out := make([]billingRow, len(rows))
		for i := range rows {
			if err := out[i].Load(rows[i], schema); err != nil {
				return provider.Result{}, malformed(kindBilling, *p.billing, err)
			}
		}
		return p.build(months, nil, out)
	}
	out := make([]carbonRow, len(rows))
	for i := range rows {
		if err := out[i].Load(rows[i], schema); err != nil {
			return provider.Result{}, malformed(kindCarbon, p.carbon, err)
		}
	}
	return p.build(months, out, nil)
}

// TagValue is tagValue: how the tag feed spells a value the export gives.
func TagValue(v bigquery.NullString) string { return tagValue(v) }
