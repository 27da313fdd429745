#!/usr/bin/env bash
# Install the system packages the browser, PostgreSQL and deployment (nginx) test suites need, and R with
# lme4/lmerTest/ordinal/BayesFactor (the analysis's optional R backend and its checks against R) and foreign (the
# SPSS export's check), when missing
# (Debian/Ubuntu).
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v pg_ctlcluster >/dev/null 2>&1 || [ -d /usr/lib/postgresql ] || need+=(postgresql)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
# jsonlite: analysis/mixed/fit_mixed.R hands its results back as JSON (no R package above depends on it);
# foreign: R's own SPSS reader, which the export's .sav file is checked with (tests/test_labelled_export.py)
Rscript -e 'for (p in c("lme4", "lmerTest", "ordinal", "BayesFactor", "jsonlite", "foreign")) library(p, character.only = TRUE)' \
  >/dev/null 2>&1 || need+=(r-base-core r-cran-lme4 r-cran-lmertest r-cran-ordinal r-cran-bayesfactor r-cran-jsonlite r-cran-foreign)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: apt-get not found; install ${need[*]} yourself (browser/PostgreSQL/deployment tests skip without them)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
