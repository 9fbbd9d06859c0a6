#!/usr/bin/env bash
# CI step: the declared minimum versions of xenpatch's runtime dependencies
# (each ">=X" of [project].dependencies in pyproject.toml, installed as "==X")
# in a separate virtualenv (.venv-floors), then the unit tests on them.  A
# floor that is not true fails here.  Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}  # Debian's, as scripts/setup.sh
venv=.venv-floors
pins=$("$PY" - <<'PYEOF'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
for d in deps:
    m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([^,;\s]+)\s*", d)
    if not m:
        raise SystemExit(f"floors: {d!r} is not NAME>=VERSION")
    print(f"{m[1]}=={m[2]}")
PYEOF
)
stamp=$venv/.floors
if [ ! -x $venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$pins" ]; then
    rm -rf $venv
    "$PY" -m venv $venv
    echo "$pins" > $venv/floors.txt
    # The floors as constraints: xenpatch (editable) and its test extras on top of them.
    $venv/bin/python -m pip install -qq -c $venv/floors.txt -e '.[test]'
    echo "$pins" > "$stamp"
fi
echo "floors: $(echo $pins)" >&2
# The floors are what is installed (a constraint pip could not meet would have failed above).
for pin in $pins; do
    got=$($venv/bin/python -m pip show "${pin%%==*}" 2>/dev/null | sed -n 's/^Version: //p')
    [ "$got" = "${pin#*==}" ] || { echo "floors: ${pin%%==*} is $got, not ${pin#*==}" >&2; exit 1; }
done
exec $venv/bin/python -m pytest -q -p no:cacheprovider "$@"
