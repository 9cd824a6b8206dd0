#!/usr/bin/env bash
# Update the vendored SPARQL query editor (YASGUI) in server/static/vendor/yasgui/.
# Usage: tools/vendor-yasgui.sh VERSION        e.g. tools/vendor-yasgui.sh 4.2.28
#
# The files are committed, so installs (and /sparql) need no network; this script is only for
# moving to another version. It fetches the package @triply/yasgui@VERSION with the npm client
# (`npm pack`, which checks the registry's integrity hash itself; no install scripts run), then
# copies the built bundle, its stylesheet, the package's licence (MIT) and the notices of the
# third-party code bundled in it, and records the version in VERSION. Review and commit the result.
# Needs node and npm.
set -euo pipefail

version=${1:?usage: $0 VERSION (e.g. 4.2.28)}
package=@triply/yasgui
files=(build/yasgui.min.js build/yasgui.min.css build/yasgui.min.js.LICENSE.txt LICENSE.txt)
target=$(cd "$(dirname "$0")/.." && pwd)/server/static/vendor/yasgui

command -v npm >/dev/null || { echo "npm not found: install Node.js (with npm) to update YASGUI" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

tarball=$(cd "$tmp" && npm pack --loglevel=error --ignore-scripts "$package@$version" | tail -n 1)
tar -xzf "$tmp/$tarball" -C "$tmp" package/package.json "${files[@]/#/package/}"
resolved=$(node -p 'require(process.argv[1]).version' "$tmp/package/package.json")

mkdir -p "$tmp/out"
for f in "${files[@]}"; do cp "$tmp/package/$f" "$tmp/out/"; done
echo "$resolved" > "$tmp/out/VERSION"
rm -rf "$target"
mkdir -p "$(dirname "$target")"
cp -r "$tmp/out" "$target"
echo "$package@$resolved in ${target#"$PWD"/}:"
ls -l "$target"
