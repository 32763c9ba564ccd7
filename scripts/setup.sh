#!/usr/bin/env bash
# Idempotent set-up: installs only what is missing.
#   - Debian packages for the cross toolchains, emulators and serial tests
#   - a venv in .venv with torch==2.13.0 (CPU build) installed first, then the project + test extras
#   - the CMSIS-DSP source distribution under third_party/ (from PyPI, no other network)
# Usage: scripts/setup.sh [--no-apt] [--no-tflite]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

want_apt=1
extras="test,tflite,ray"
for arg in "$@"; do
  case "$arg" in
    --no-apt) want_apt=0 ;;
    --no-tflite) extras="test,ray" ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[setup] %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------------------------
debs=(gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang lld-14 mspdebug msp430mcu socat
      cmake make binutils-arm-none-eabi)
if [ "$want_apt" = 1 ] && command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo_cmd apt-get update -qq
    $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# --- Python venv -----------------------------------------------------------------------------------
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$py" -m venv .venv
fi
vpy=.venv/bin/python
if ! "$vpy" -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else 1)' 2>/dev/null; then
  log "installing torch==2.13.0 (CPU build) first"
  "$vpy" -m pip install -q --upgrade pip
  "$vpy" -m pip install -q torch==2.13.0
fi
stamp=.venv/.batteryless-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log "installing the project with extras [$extras]"
  "$vpy" -m pip install -q -e ".[$extras]"
  touch "$stamp"
fi

# --- CMSIS-DSP sources (sdist from PyPI) -----------------------------------------------------------
cmsis_dir=third_party/cmsisdsp
if [ ! -f "$cmsis_dir/Include/arm_math.h" ]; then
  log "fetching the CMSIS-DSP source distribution from PyPI"
  tmp="$(mktemp -d)"
  "$vpy" -m pip download -q --no-deps --no-binary cmsisdsp "cmsisdsp==1.10.3" -d "$tmp" \
    || "$vpy" -m pip download -q --no-deps --no-binary cmsisdsp cmsisdsp -d "$tmp"
  mkdir -p third_party
  rm -rf "$cmsis_dir.partial"
  mkdir -p "$cmsis_dir.partial"
  tar -xzf "$tmp"/cmsisdsp-*.tar.gz -C "$cmsis_dir.partial" --strip-components=1
  rm -rf "$cmsis_dir" && mv "$cmsis_dir.partial" "$cmsis_dir"
  rm -rf "$tmp"
fi
log "ready: $(cd "$here" && .venv/bin/batteryless --version 2>/dev/null || echo 'batteryless not importable')"
