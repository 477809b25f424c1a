// Package dashboards holds the Grafana dashboards bundled with the exporter.
//
// The dashboards are the JSON files in this directory; Grafana imports them
// as they are (Dashboards → New → Import, or file provisioning, see
// examples/grafana). They are generated with grafana-foundation-sdk by the
// builders in dashboards_test.go, and a test fails when a committed file
// differs from what the builders produce. After changing a builder, run
//
//	go test ./dashboards -run TestGenerated -update
//
// The other tests check every committed file: grafana-foundation-sdk's
// strict unmarshal and Validate, the variables, that every metric a query
// names is documented in the README metric table, that every selector
// applies the dashboard's variables, that every sum or count (here and in
// rules/) first keeps one copy of each series by its labels, and (with
// promtool on PATH) that every expression parses. e2e/dashboards_test.go runs every query against a real
// Prometheus that scraped the exporter in demo mode.
package dashboards
