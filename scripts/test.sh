#!/usr/bin/env bash
# Set up (scripts/setup.sh), fetch real Xen from Debian (scripts/fetch_xen.py,
# cached), then run ruff, mypy and the whole test suite.  Exits non-zero when
# anything fails, including a run that collected no tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python scripts/fetch_xen.py
.venv/bin/ruff check xenpatch tests bench scripts
.venv/bin/mypy xenpatch
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "test.sh: pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
