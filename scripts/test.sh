#!/usr/bin/env bash
# Set up everything and run the whole test suite (lint + all pytest suites, slow/browser/postgres included).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
bash scripts/setup.sh all
# axe-core, which the browser tests inject into pages (the version tests/js/package-lock.json pins)
npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest "$@"
