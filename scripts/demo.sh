#!/usr/bin/env bash
# Set up xenpatch and run its main job: generate the SIF_HVM_GHCB RFC series
# (config.toml, [changes.sif-hvm-ghcb]) against a real Xen tree: [tree].path
# of the config, or, when none is configured, Xen 4.17.5 fetched from Debian.
# The series is written to ./series; nothing is mailed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/xenpatch generate "$@"
echo
echo "== the series (./series) =="
ls -1 series
echo
cat series/0000-cover-letter.patch
