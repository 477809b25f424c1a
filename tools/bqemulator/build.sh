#!/usr/bin/env bash
# Builds goccy/bigquery-emulator (pinned in this directory's go.mod) once per
# machine and prints the binary's path on stdout. The build is cgo over
# ZetaSQL: it needs clang (gcc fails) and takes ~10-15 minutes on 2 cores the
# first time, so the binary is cached and reused while go.sum is unchanged.
#
#   BQ_EMULATOR="$(tools/bqemulator/build.sh)"
#
# Environment: BQ_EMULATOR_CACHE overrides the cache directory
# (default ${XDG_CACHE_HOME:-$HOME/.cache}/cloudcarbon/bigquery-emulator).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${BQ_EMULATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cloudcarbon/bigquery-emulator}"

# The cache key is the pinned dependency set, so bumping the emulator in
# go.mod rebuilds instead of silently reusing an old binary.
key="$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-16)"
bin="$cache/$key/bigquery-emulator"

if [[ -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

if ! command -v clang >/dev/null 2>&1 || ! command -v clang++ >/dev/null 2>&1; then
	echo "bqemulator: installing clang (the emulator does not build with gcc)" >&2
	sudo=""
	if [[ "$(id -u)" != 0 ]]; then sudo="sudo"; fi
	$sudo apt-get install -y --no-install-recommends clang >&2 ||
		{ $sudo apt-get update >&2 && $sudo apt-get install -y --no-install-recommends clang >&2; }
fi

mkdir -p "$cache/$key"
echo "bqemulator: building $bin (first build takes ~10-15 min on 2 cores)" >&2
start=$SECONDS
(
	cd "$here"
	CGO_ENABLED=1 CC=clang CXX=clang++ go build -o "$bin.tmp" \
		github.com/goccy/bigquery-emulator/cmd/bigquery-emulator
) >&2
mv "$bin.tmp" "$bin"
echo "bqemulator: built in $((SECONDS - start))s" >&2
echo "$bin"
