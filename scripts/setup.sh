#!/usr/bin/env bash
# Create .venv and install the project with the given extras (default: all).
# torch==2.13.0 is installed first when the ML stack is wanted: an unpinned torch would pull a multi-GB
# CUDA build onto a CPU machine. Idempotent: re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-all}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
case ",$extras," in
  *,all,*|*,ml,*) .venv/bin/python -m pip install --quiet "torch==2.13.0" ;;
esac
.venv/bin/python -m pip install --quiet -e ".[$extras]"
case ",$extras," in
  # the Inception-FID test's reference (tests/test_inception.py): only its resizer and TorchScript wrapper
  *,all,*|*,test,*) .venv/bin/python -m pip install --quiet --no-deps "clean-fid==0.1.35" ;;
esac
