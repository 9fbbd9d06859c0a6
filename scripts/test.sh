#!/usr/bin/env bash
# Set up (scripts/setup.sh), fetch real Xen from Debian (xenpatch fetch-xen,
# cached), run ruff and mypy, the whole test suite (including
# tests/test_install.py: a wheel installed into a fresh venv and used from an
# empty directory), then the unit tests on the declared minimum versions of
# the runtime dependencies (scripts/floors.sh).  Exits non-zero when anything
# fails, including a run that collected no tests.  Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/xenpatch -q fetch-xen >/dev/null
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
[ "$rc" -eq 0 ] || exit "$rc"
# The floors: the unit tests (no real-tree end-to-end, build or install tests, which the
# run above covers on the current versions).
bash scripts/floors.sh -x tests/test_config.py tests/test_cli.py tests/test_xentree.py \
    tests/test_generate_unit.py tests/test_generate_out.py tests/test_generate.py tests/test_mail_compose.py \
    tests/test_mail_send.py tests/test_maintainers.py tests/test_abi_layout.py \
    tests/test_abi_macros.py tests/test_abi_families.py tests/test_abi_diff.py tests/test_abi_cache.py
