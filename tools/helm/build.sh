#!/usr/bin/env bash
# Installs helm (pinned below) once per machine from the Go module proxy
# (`go install helm.sh/helm/v3/cmd/helm@VERSION`) and prints the binary's
# path on stdout. The first build takes 2-6 minutes on 2 cores; the binary
# is cached per version and reused. The chart tests (deploy/helm/test) use
# it; lint and template work offline.
#
#   HELM="$(tools/helm/build.sh)"
#
# Environment: HELM_VERSION overrides the pinned version; HELM_CACHE overrides
# the cache directory (default
# ${CLOUDCARBON_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cloudcarbon}/helm).
set -euo pipefail

version="${HELM_VERSION:-v3.22.0}"
cache="${HELM_CACHE:-${CLOUDCARBON_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cloudcarbon}/helm}"
# The cache key is the version, so bumping the pin installs a new binary
# instead of silently reusing an old one.
dir="$cache/$version"
bin="$dir/helm"

if [[ -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

command -v go >/dev/null 2>&1 || { echo "helm: go is required to build helm" >&2; exit 1; }

mkdir -p "$dir"
echo "helm: building helm $version into $dir (~6 min the first time)" >&2
start=$SECONDS
# Build into a temporary GOBIN and move the binary into place, so an
# interrupted build never leaves a half-written binary that looks cached.
tmp="$(mktemp -d "$dir/.gobin.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# The ldflags of helm's own Makefile: without them `helm version` says
# "v3.22" and helm assumes Kubernetes v1.20 for .Capabilities and lint
# (charts with a newer kubeVersion fail). Its Kubernetes version is the
# client-go minor it was built with, major + 1 (v0.37.0 -> 1.37).
gomod="$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "helm.sh/helm/v3@$version" |
	sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
client_go="$(sed -n 's/^[[:space:]]*k8s.io\/client-go v\([0-9]*\)\.\([0-9]*\)\..*/\1 \2/p' "$gomod" | head -n1)"
if [[ -z "$client_go" ]]; then
	echo "helm: cannot find the client-go version in $gomod" >&2
	exit 1
fi
read -r k8s_major k8s_minor <<<"$client_go"
k8s_major=$((k8s_major + 1))
ldflags="-X helm.sh/helm/v3/internal/version.version=$version"
for pkg in pkg/lint/rules pkg/chartutil; do
	ldflags="$ldflags -X helm.sh/helm/v3/$pkg.k8sVersionMajor=$k8s_major -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$k8s_minor"
done
(cd "$tmp" && CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$version") >&2
"$tmp/helm" version >&2
mv "$tmp/helm" "$bin"
echo "helm: built in $((SECONDS - start))s" >&2
echo "$bin"
