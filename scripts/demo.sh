#!/usr/bin/env bash
# Set up the study extra (no torch), draw the synthetic demo bundle if missing, register the demo protocol in
# an embedded SQLite database, and open the participant app on http://127.0.0.1:8501.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh study
bin=.venv/bin
protocol="${SKINGEN_PROTOCOL:-examples/protocols/between.yaml}"
db="${SKINGEN_DB_URL:-sqlite:///var/demo.db}"
[ -f var/demo-bundle/manifest.json ] || "$bin/skingen-study" demo-bundle var/demo-bundle
"$bin/skingen-study" init --db "$db" --protocol "$protocol"
if "$bin/python" -c "import study.app" 2>/dev/null; then
  exec "$bin/skingen-study" serve --db "$db" --protocol "$protocol" --host 127.0.0.1 --port 8501
fi
# Until the participant app lands: walk bots through the real engine and export what they produced.
"$bin/skingen-study" simulate --db "$db" --protocol "$protocol" -n 40 --effect trust=1 --effect comprehension=1
"$bin/skingen-study" export --db "$db" --out var/demo-export
