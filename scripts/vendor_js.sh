#!/usr/bin/env bash
# Install the dashboard's pinned JavaScript libraries (package-lock.json) and copy their dist
# files and licences into api/dashboard/vendor/, which is committed: the app, its tests and CI
# need neither npm nor the internet. Run after changing package.json.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --ignore-scripts --no-audit --no-fund
out=api/dashboard/vendor/maplibre-gl
rm -rf "$out" && mkdir -p "$out"
cp node_modules/maplibre-gl/dist/maplibre-gl.js node_modules/maplibre-gl/dist/maplibre-gl.css \
   node_modules/maplibre-gl/LICENSE.txt "$out"/
cp node_modules/maplibre-gl/package.json "$out"/package.json
echo "vendored maplibre-gl $(node -p "require('./node_modules/maplibre-gl/package.json').version") into $out"
out=api/dashboard/vendor/uplot
rm -rf "$out" && mkdir -p "$out"
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css \
   node_modules/uplot/LICENSE "$out"/
cp node_modules/uplot/package.json "$out"/package.json
echo "vendored uplot $(node -p "require('./node_modules/uplot/package.json').version") into $out"
