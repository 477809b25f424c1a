package gcp

import (
	"fmt"
	"strings"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
)

// The row types load themselves (bigquery.ValueLoader) from the values the
// BigQuery client decodes a row into, rather than through the client's
// reflection: the decoding of an answer into records is then this
// package's code from the client's values on, and FuzzQueryResponse drives
// it directly, without a client, a server or HTTP.

var (
	_ bigquery.ValueLoader = (*carbonRow)(nil)
	_ bigquery.ValueLoader = (*billingRow)(nil)
)

// Load implements bigquery.ValueLoader.
func (r *carbonRow) Load(v []bigquery.Value, s bigquery.Schema) error {
	*r = carbonRow{}
	return loadRow(v, s, func(column string) any {
		switch column {
		case "usage_month":
			return &r.UsageMonth
		case "billing_account_id":
			return &r.BillingAccountID
		case "project_id":
			return &r.ProjectID
		case "service":
			return &r.Service
		case "region":
			return &r.Region
		case "location":
			return &r.Location
		case "carbon_model_version":
			return &r.ModelVersion
		case "scope1_kg":
			return &r.Scope1
		case "scope2_location_kg":
			return &r.Scope2Location
		case "scope2_market_kg":
			return &r.Scope2Market
		case "scope3_kg":
			return &r.Scope3
		}
		return nil
	})
}

// Load implements bigquery.ValueLoader.
func (r *billingRow) Load(v []bigquery.Value, s bigquery.Schema) error {
	*r = billingRow{}
	return loadRow(v, s, func(column string) any {
		switch column {
		case "invoice_month":
			return &r.InvoiceMonth
		case "billing_account_id":
			return &r.BillingAccountID
		case "project_id":
			return &r.ProjectID
		case "project_name":
			return &r.ProjectName
		case "service":
			return &r.Service
		case "region":
			return &r.Region
		case "location":
			return &r.Location
		case "currency":
			return &r.Currency
		case "currency_conversion_rate":
			return &r.ConversionRate
		case "net_cost_micros":
			return &r.NetMicros
		case "tag_key":
			return &r.TagKey
		case "tag_value":
			return &r.TagValue
		}
		return nil
	})
}

// loadRow sets the fields that field names, by column name (BigQuery's
// are case-insensitive), from the values of one row. Columns it does not
// name are ignored and NULL leaves a field invalid, as the client's own
// loading does; a column of another type than its field is an error.
func loadRow(v []bigquery.Value, s bigquery.Schema, field func(column string) any) error {
	if len(v) != len(s) {
		return fmt.Errorf("a row of %d values for %d columns", len(v), len(s))
	}
	for i, col := range s {
		if col == nil {
			return fmt.Errorf("column %d has no schema", i+1)
		}
		dst := field(strings.ToLower(col.Name))
		if dst == nil {
			continue
		}
		if want := fieldType(dst); col.Repeated || col.Type != want {
			return fmt.Errorf("column %s is of type %s (repeated: %v), want %s", col.Name, col.Type, col.Repeated, want)
		}
		if v[i] == nil {
			continue
		}
		ok := false
		switch dst := dst.(type) {
		case *bigquery.NullString:
			dst.StringVal, ok = v[i].(string)
			dst.Valid = ok
		case *bigquery.NullInt64:
			dst.Int64, ok = v[i].(int64)
			dst.Valid = ok
		case *bigquery.NullFloat64:
			dst.Float64, ok = v[i].(float64)
			dst.Valid = ok
		case *bigquery.NullDate:
			dst.Date, ok = v[i].(civil.Date)
			dst.Valid = ok
		}
		if !ok {
			return fmt.Errorf("column %s holds a %T, not a %s", col.Name, v[i], col.Type)
		}
	}
	return nil
}

// fieldType is the column type a field loads from.
func fieldType(dst any) bigquery.FieldType {
	switch dst.(type) {
	case *bigquery.NullString:
		return bigquery.StringFieldType
	case *bigquery.NullInt64:
		return bigquery.IntegerFieldType
	case *bigquery.NullFloat64:
		return bigquery.FloatFieldType
	case *bigquery.NullDate:
		return bigquery.DateFieldType
	}
	return ""
}
