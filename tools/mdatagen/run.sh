#!/usr/bin/env bash
# Runs mdatagen, pinned in this directory's go.mod, on a component's
# metadata.yaml: go:generate in receiver/cloudcarbonreceiver calls it.
#
#   tools/mdatagen/run.sh path/to/metadata.yaml
#
# The binary is built once per pinned dependency set and cached under
# ${XDG_CACHE_HOME:-~/.cache}/cloudcarbon/mdatagen (~1.5 min the first time).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
metadata="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
cache="${CLOUDCARBON_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cloudcarbon}/mdatagen"
key="$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-16)"
bin="$cache/$key/mdatagen"
if [[ ! -x "$bin" ]]; then
	mkdir -p "$cache/$key"
	echo "mdatagen: building $bin" >&2
	(cd "$here" && go build -o "$bin.tmp" go.opentelemetry.io/collector/cmd/mdatagen) >&2
	mv "$bin.tmp" "$bin"
fi
# mdatagen derives the component's import path from the module around
# metadata.yaml, so it runs there.
cd "$(dirname "$metadata")"
exec "$bin" "$metadata"
