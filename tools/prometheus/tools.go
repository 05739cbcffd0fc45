//go:build tools

// Package tools pins the promtool command that build.sh compiles: `promtool test rules` checks the
// chart's PrometheusRule against series taken from the service's real /metrics.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
