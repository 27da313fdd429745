#!/usr/bin/env bash
# Set up the study and analysis extras (no torch), draw the synthetic demo bundle if missing, register the demo
# protocol in an embedded SQLite database, and serve the app on http://127.0.0.1:8501.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh study,analysis
bin=.venv/bin
protocol="${SKINGEN_PROTOCOL:-examples/protocols/between.yaml}"
db="${SKINGEN_DB_URL:-sqlite:///var/demo.db}"
[ -f var/demo-bundle/manifest.json ] || "$bin/skingen-study" demo-bundle var/demo-bundle
"$bin/skingen-study" init --db "$db" --protocol "$protocol"
echo "Participants: open http://127.0.0.1:8501 (add ?PROLIFIC_PID=test to see URL parameters recorded)"
exec "$bin/skingen-study" serve --demo --db "$db" --protocol "$protocol" --host 127.0.0.1 --port 8501
