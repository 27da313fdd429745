#!/usr/bin/env bash
# Set up the study and analysis extras (no torch), then serve the demo study on http://127.0.0.1:8501:
# `serve --demo` copies the packaged demo protocol (app/demo/between.yaml) into the user data folder
# (~/.local/share/skingen-study/demo; --demo-dir DIR or $SKINGEN_DEMO_DIR to choose another), draws the
# synthetic demo bundle beside it if missing, registers it in an embedded SQLite database (var/demo.db) and
# prints a one-time password for the researcher dashboard.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh study,analysis
echo "Participants: open http://127.0.0.1:8501 (add ?PROLIFIC_PID=test to see URL parameters recorded)"
exec .venv/bin/skingen-study serve --demo --db "${SKINGEN_DB_URL:-sqlite:///var/demo.db}" \
  --host 127.0.0.1 --port 8501
