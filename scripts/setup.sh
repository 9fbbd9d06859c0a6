#!/usr/bin/env bash
# Set up xenpatch on a Debian machine: the Debian packages it and its tests
# need (installed only when missing), and a virtualenv .venv with xenpatch
# installed (editable) with its test dependencies.  Idempotent and quiet:
# one line per step that does something, errors in full.  Ends by checking
# that every tool it promises works, failing with one line naming what does
# not.  tests/test_setup_packages.py checks that APT_PACKAGES brings every
# package the suite and the demo use onto a Debian 12 machine without them.
set -euo pipefail
cd "$(dirname "$0")/.."

# Compilers and tools xenpatch runs (cpp, gcc -m32/-m64, clang for arm,
# g++ for headers++.chk), git and git send-email with the Recommends of
# git-email it needs (Mail::Address, Email::Valid, Authen::SASL,
# IO::Socket::SSL), perl for Xen's get_maintainer.pl, dpkg-dev/apt for the
# Xen fetch, public-inbox (public-inbox-httpd: a real archive on 127.0.0.1
# for review's tests), abigail-tools (abidw/abidiff, compared against by
# the ABI tests), and what --build-check needs to build libxenguest, libxl
# and xl.
APT_PACKAGES=(
    python3 python3-venv python3-pip python3-dev
    git git-email libmailtools-perl libemail-valid-perl libauthen-sasl-perl libio-socket-ssl-perl
    perl openssl ca-certificates debian-archive-keyring apt gpgv
    cpp gcc g++ gcc-multilib g++-multilib clang llvm binutils
    public-inbox abigail-tools
    make pkgconf bison flex uuid-dev libyajl-dev zlib1g-dev libncurses-dev
    acpica-tools libbz2-dev liblzma-dev libzstd-dev liblzo2-dev
    abigail-tools
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    log=$(mktemp)
    if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
            --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "setup: apt-get failed (above)" >&2
        exit 1
    fi
    rm -f "$log"
fi

# Debian's interpreter, the one python3-venv and python3-dev above are for; another
# python3 first on PATH (pyenv's) only when asked for: PYTHON=python3.  Debian builds
# it with PGO and LTO (measured: a cold abi diff 13-15% faster than on a plain
# --enable-shared build of the same 3.11).
PY=${PYTHON:-/usr/bin/python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with xenpatch and its test dependencies" >&2
    "$PY" -m venv .venv
fi
stamp=.venv/.xenpatch-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    # -qq: errors only (pip's -q still prints warnings, e.g. about the machine's index URLs)
    .venv/bin/python -m pip install -qq --upgrade pip
    .venv/bin/python -m pip install -qq -e '.[test]'
    touch "$stamp"
fi

# Every promised tool works (one line naming the first that does not).
check() {
    local what=$1
    shift
    if ! "$@" >/dev/null 2>&1; then
        echo "setup: $what does not work ($*)" >&2
        exit 1
    fi
}
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <stdint.h>\n#include <stddef.h>\nint x;\n' >"$probe/t.c"
check "git send-email" git send-email --help
check "git send-email's perl modules" perl -MMail::Address -MEmail::Valid -MAuthen::SASL -MIO::Socket::SSL -e1
check "gcc -m32" gcc -m32 -c "$probe/t.c" -o "$probe/t32.o"
check "gcc -m64" gcc -m64 -c "$probe/t.c" -o "$probe/t64.o"
check "g++" g++ -x c++ -fsyntax-only "$probe/t.c"
check "clang --target aarch64-linux-gnu" clang --target=aarch64-linux-gnu -ffreestanding -c "$probe/t.c" -o "$probe/a64.o"
check "clang --target armv7a-linux-gnueabihf" clang --target=armv7a-linux-gnueabihf -ffreestanding -c "$probe/t.c" -o "$probe/a32.o"
check "get_maintainer.pl's perl modules" perl -MGetopt::Long -e1
check "public-inbox-httpd" sh -c 'command -v public-inbox-httpd && perl -MPlack -MPublicInbox::WWW -e1'
check "abidiff" abidiff --version
check "abidw" abidw --version
check "dpkg-deb (fetch-xen)" dpkg-deb --version
check "xenpatch in .venv" .venv/bin/xenpatch --version
