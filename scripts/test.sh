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
# The floors: the tests again, but for those that exercise no Python dependency
# differently (the installed wheel, Debian packages, the build check, the compiler
# differential, apt fetches), which the run above covers.
exec bash scripts/floors.sh -x --ignore=tests/test_install.py --ignore=tests/test_setup_packages.py \
    --ignore=tests/test_generate_build.py --ignore=tests/test_abi_compiler.py \
    --ignore=tests/test_fetch_xen.py
