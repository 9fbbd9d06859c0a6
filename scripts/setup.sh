#!/usr/bin/env bash
# Set up xenpatch on a Debian machine: the Debian packages it and its tests
# need (installed only when missing), and a virtualenv .venv with xenpatch
# installed (editable) with its test dependencies.  Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

# Compilers and tools xenpatch runs (cpp, gcc -m32/-m64, clang for arm,
# g++ for headers++.chk), git and git send-email, perl for Xen's
# get_maintainer.pl, and what --build-check needs to build libxenguest,
# libxl and xl; public-inbox for the review tests' real archive server
# (public-inbox-init/-mda/-httpd; its Perl modules are all Depends).
APT_PACKAGES=(
    python3 python3-venv python3-pip python3-dev
    git git-email libmailtools-perl libemail-valid-perl libauthen-sasl-perl libio-socket-ssl-perl
    perl openssl ca-certificates
    cpp gcc g++ gcc-multilib g++-multilib clang llvm binutils
    make pkgconf bison flex uuid-dev libyajl-dev zlib1g-dev libncurses-dev
    acpica-tools libbz2-dev liblzma-dev libzstd-dev liblzo2-dev
    public-inbox
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.xenpatch-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[test]'
    touch "$stamp"
fi
