// Package cloudcarbonreceiver is an OpenTelemetry Collector receiver for the
// carbon footprint that clouds report themselves. It runs the
// cloudcarbon_exporter's engine (the provider plug-ins, the
// publication-aware refresher and the store) inside a Collector, and emits
// the exporter's metrics with the cloud resource attributes of the
// OpenTelemetry conventions.
//
//go:generate ../../tools/mdatagen/run.sh metadata.yaml
package cloudcarbonreceiver
