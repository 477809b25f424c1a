#!/usr/bin/env bash
# Builds the OpenTelemetry Collector distribution with the cloudcarbon
# receiver (builder-receiver.yaml) with the official builder, and prints
# its path. The binary holds this repository's receiver and engine, so it
# is cached under a key of the builder configuration and of the Go sources,
# go.mod and go.sum files it is built from: an unchanged tree reuses it, a
# changed one rebuilds (Go's build cache keeps that to about a minute once
# the dependencies are compiled).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
base="${CLOUDCARBON_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cloudcarbon}"
cache="$base/otelcol-receiver"
key="$(
	cd "$repo"
	{
		cat "$here/builder-receiver.yaml"
		git ls-files -co --exclude-standard -- '*.go' '*go.mod' '*go.sum' |
			grep -v -e '_test\.go$' -e '^e2e/' -e '^tools/' -e '^deploy/' | LC_ALL=C sort | xargs sha256sum
	} | sha256sum | cut -c1-16
)"
bin="$cache/$key/otelcol-cloudcarbon-receiver"
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi
mkdir -p "$cache/$key"
# The builder is the one build.sh installs, pinned to the same release.
GOBIN="$base/otelcol/gobin" go install go.opentelemetry.io/collector/cmd/builder@v0.162.0 >&2
sed -e "s|REPOSITORY|$repo|g" -e "s|output_path: .*|output_path: $cache/$key/src|" \
	"$here/builder-receiver.yaml" >"$cache/$key/builder-receiver.yaml"
echo "building the OpenTelemetry Collector with the cloudcarbon receiver (several minutes the first time)" >&2
start=$SECONDS
"$base/otelcol/gobin/builder" --config="$cache/$key/builder-receiver.yaml" >&2
mv "$cache/$key/src/otelcol-cloudcarbon-receiver" "$bin"
echo "built in $((SECONDS - start))s" >&2
# Older trees' binaries are not used again; a build of another tree that
# may still be running is left alone.
find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -mmin +120 -exec rm -rf {} +
echo "$bin"
