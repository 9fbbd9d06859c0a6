#!/usr/bin/env bash
# Set up xenpatch and run its main job: generate the SIF_HVM_GHCB RFC series
# (config.toml, [changes.sif-hvm-ghcb]) against a real Xen tree: [tree].path
# of the config, or, when none is configured, Xen 4.17.5 fetched from Debian.
# The series is written to ./series; nothing is mailed.  Prints generate's
# summary and the define it added (what README.md shows).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Commits need an author.  Signed-off-by certifies the DCO, so only a real
# identity signs off: with none configured ([identity], XENPATCH_IDENTITY_*,
# git config user.*) the demo commits as an obvious placeholder and does not
# sign off.
extra=()
if [ -z "${XENPATCH_IDENTITY_EMAIL:-}" ] && [ -z "$(cd / && git config user.email || true)" ] \
        && ! grep -Eq '^email = ".+"' config.toml; then
    echo "demo: no identity configured (git config user.email); committing as a placeholder, no Signed-off-by" >&2
    export XENPATCH_IDENTITY_NAME="xenpatch demo" XENPATCH_IDENTITY_EMAIL="demo@xenpatch.invalid"
    extra+=(--no-signoff)
fi
.venv/bin/xenpatch generate ${extra[@]+"${extra[@]}"} "$@"
echo
echo "the define, in series/$(cd series && ls 0001-*.patch):"
# The added lines, with two lines of context before and one after, as in the hunk.
awk '{ last[NR % 3] = $0 }
     /^\+#define SIF_HVM_GHCB/ { print last[(NR - 2) % 3]; print last[(NR - 1) % 3]; on = 1 }
     on && /^\+/ { print; next }
     on { print; exit }' series/0001-*.patch
