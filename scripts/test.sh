#!/usr/bin/env bash
# Install whatever is missing, then run the whole test suite (extra arguments go to pytest).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
cd "$here"
exec .venv/bin/python -m pytest -n "${BL_TEST_WORKERS:-auto}" "$@"
