#!/usr/bin/env bash
# Builds the OpenTelemetry Collector distribution that the end-to-end OTLP
# test forwards through (OTLP receiver, Prometheus remote-write exporter),
# once per machine: the binary is cached and reused. Prints its path.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${CLOUDCARBON_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cloudcarbon}/otelcol"
bin="$cache/otelcol-cloudcarbon"
stamp="$cache/builder-config.sha256"
want="$(sha256sum "$here/builder-config.yaml" | cut -d' ' -f1)"
if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$cache"
GOBIN="$cache/gobin" go install go.opentelemetry.io/collector/cmd/builder@v0.162.0 >&2
sed "s|output_path: .*|output_path: $cache/src|" "$here/builder-config.yaml" > "$cache/builder-config.yaml"
echo "building the OpenTelemetry Collector (a few minutes the first time)" >&2
"$cache/gobin/builder" --config="$cache/builder-config.yaml" >&2
mv "$cache/src/otelcol-cloudcarbon" "$bin"
echo "$want" > "$stamp"
echo "$bin"
