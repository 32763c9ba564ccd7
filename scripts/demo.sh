#!/usr/bin/env bash
# Install whatever is missing, then run the main job end to end on bundled defaults.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
cd "$here"
out="${BL_DEMO_OUT:-out/demo}"
mkdir -p "$out"
bl=.venv/bin/batteryless
"$bl" compress --model mlp --dataset digits --out "$out/model.bl"
"$bl" evaluate "$out/model.bl" --dataset digits --json "$out/evaluate.json"
