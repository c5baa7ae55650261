#!/usr/bin/env bash
# Vendors uPlot (MIT), the dashboard's charting library, from the npm registry into
# uplot/: the minified script, its stylesheet and its licence. The files are committed,
# so building and running cloudpf never downloads anything; run this only to change the
# version (update VERSION and INTEGRITY from `npm view uplot@<v> dist.integrity`).
set -euo pipefail
VERSION=1.6.32
INTEGRITY=sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL -o "$tmp/uplot.tgz" "https://registry.npmjs.org/uplot/-/uplot-$VERSION.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tmp/uplot.tgz" | base64 -w0)"
if [ "$got" != "$INTEGRITY" ]; then
  echo "uplot-$VERSION.tgz does not match the registry's integrity: $got" >&2
  exit 1
fi
tar xzf "$tmp/uplot.tgz" -C "$tmp"
mkdir -p uplot
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" "$tmp/package/LICENSE" uplot/
echo "$VERSION" > uplot/VERSION
echo "vendored uPlot $VERSION"
