#!/usr/bin/env bash
# Install whatever is missing, then run the main job end to end on bundled defaults:
#   compress (RAD) → evaluate (integer reference) → codegen (ACE, Cortex-M4) → build (CMake, real CMSIS
#   toolchain) → run the firmware in QEMU on test samples → emulate the schedule on a bundled energy trace.
# Outputs go to out/demo/ (override with BL_DEMO_OUT). Extra arguments go to `compress`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
cd "$here"
out="${BL_DEMO_OUT:-out/demo}"
mkdir -p "$out"
bl=.venv/bin/batteryless
step() { printf '\n== %s\n' "$*"; }

step "compress: digits MLP → block-circulant 16-bit artifact"
"$bl" compress --model mlp --dataset digits --out "$out/model.bl" --json "$out/compress.json" "$@"
step "evaluate: the integer reference (what every firmware backend computes)"
"$bl" -q evaluate "$out/model.bl" --json "$out/evaluate.json" >/dev/null
python3 -c "import json,sys; a=json.load(open(sys.argv[1]))['accuracy']; print('integer reference accuracy: %.2f%%' % (100*a['reference_accuracy']))" "$out/evaluate.json"
step "codegen: C + schedule.json for QEMU's Cortex-M4 (mps2-an386), portable ref kernels"
"$bl" codegen "$out/model.bl" --board mps2-an386 --backend ref --out "$out/gen"
step "build: arm-none-eabi-gcc via CMake"
"$bl" build --board mps2-an386 --backend ref --model-dir "$out/gen" --out "$out/build"
step "run: 20 test samples in QEMU (instruction counts from the project's TCG plugin)"
"$bl" run "$out/build" --board mps2-an386 --dataset digits --artifact "$out/model.bl" --samples 20
step "emulate: the generated schedule on a bundled solar trace with the FR5994 power model"
"$bl" codegen "$out/model.bl" --board msp430fr5994 --backend ref --out "$out/gen-msp430" >/dev/null
"$bl" emulate --schedule "$out/gen-msp430/schedule.json" --trace solar-office --board msp430fr5994 --out "$out/emulate"
step "emulate --firmware: the real FLEX image in QEMU, power cut at the end of every power-on period (4.7 uF)"
"$bl" emulate --firmware --artifact "$out/model.bl" --board mps2-an386 --trace markov-2mw \
    --capacitance-uf 4.7 --max-periods 500 --out "$out/emulate-firmware"
step "done: outputs in $out"
