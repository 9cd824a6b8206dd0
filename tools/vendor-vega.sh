#!/usr/bin/env bash
# Update the vendored chart libraries of the /compare page (Vega, Vega-Lite, vega-embed) in
# server/static/vendor/vega/.
# Usage: tools/vendor-vega.sh VEGA VEGA_LITE VEGA_EMBED     e.g. tools/vendor-vega.sh 6.4.0 6.4.3 7.3.0
#
# The files are committed, so installs (and /compare) need no network; this script is only for
# moving to other versions. It fetches each package with the npm client (`npm pack`, which checks
# the registry's integrity hash itself; no install scripts run), copies its minified browser build
# and its licence (BSD-3-Clause), and records the versions in VERSIONS. Vega-Lite's major version
# must match the one Altair writes specifications for (its "$schema"). Review and commit the result.
# Needs node and npm.
set -euo pipefail

vega=${1:?usage: $0 VEGA VEGA_LITE VEGA_EMBED}
vega_lite=${2:?usage: $0 VEGA VEGA_LITE VEGA_EMBED}
vega_embed=${3:?usage: $0 VEGA VEGA_LITE VEGA_EMBED}
target=$(cd "$(dirname "$0")/.." && pwd)/server/static/vendor/vega

command -v npm >/dev/null || { echo "npm not found: install Node.js (with npm) to update Vega" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/out"
for spec in "vega@$vega:vega.min.js" "vega-lite@$vega_lite:vega-lite.min.js" "vega-embed@$vega_embed:vega-embed.min.js"; do
  package=${spec%%:*}
  file=${spec#*:}
  name=${package%@*}
  tarball=$(cd "$tmp" && npm pack --loglevel=error --ignore-scripts "$package" | tail -n 1)
  mkdir -p "$tmp/$name"
  tar -xzf "$tmp/$tarball" -C "$tmp/$name" package/package.json "package/build/$file" package/LICENSE
  cp "$tmp/$name/package/build/$file" "$tmp/out/"
  cp "$tmp/$name/package/LICENSE" "$tmp/out/LICENSE.$name"
  echo "$name $(node -p 'require(process.argv[1]).version' "$tmp/$name/package/package.json")" >> "$tmp/out/VERSIONS"
done
rm -rf "$target"
mkdir -p "$(dirname "$target")"
cp -r "$tmp/out" "$target"
echo "in ${target#"$PWD"/}:"
cat "$target/VERSIONS"
