//go:build tools

// Package bqemulator only exists to pin github.com/goccy/bigquery-emulator in
// go.mod/go.sum; build.sh builds its command from this module.
package bqemulator

import _ "github.com/goccy/bigquery-emulator/cmd/bigquery-emulator"
