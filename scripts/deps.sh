#!/usr/bin/env bash
# scripts/deps.sh: install the Debian packages needed to build and test
# pgmaker (PostgreSQL server and headers, OpenBLAS/LAPACKE, pgTAP, pg_prove,
# the Perl TAP modules, a C toolchain) and run its hardening targets
# (sqlsmith, valgrind, clang with libFuzzer). Only missing packages are installed;
# when everything is present it prints a single line and does nothing else.
#
# The PostgreSQL major version is taken from `pg_config --version`, else from
# the newest /usr/lib/postgresql/<major>; with no PostgreSQL at all, Debian's
# default server and server-dev packages are installed first.
#
# Usage: scripts/deps.sh
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "deps: not root and sudo is not available; cannot install packages" >&2
        exit 1
    fi
    SUDO=(sudo -n)
fi

APT_UPDATED=0

is_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}

apt_install() {
    if [[ $APT_UPDATED -eq 0 ]]; then
        echo "deps: running apt-get update" >&2
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
        APT_UPDATED=1
    fi
    echo "deps: installing: $*" >&2
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "$@"
}

# Print the PostgreSQL major version found on this machine, or nothing.
detect_major() {
    local ver major=""
    if command -v pg_config >/dev/null 2>&1; then
        ver=$(pg_config --version 2>/dev/null | awk '{print $2}' || true)
        if [[ $ver =~ ^9\.[0-9]+ ]]; then
            major=${BASH_REMATCH[0]}
        elif [[ $ver =~ ^[0-9]+ ]]; then
            major=${BASH_REMATCH[0]}
        fi
    fi
    if [[ -z $major && -d /usr/lib/postgresql ]]; then
        major=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d \
                    -printf '%f\n' 2>/dev/null | sort -V | tail -n 1 || true)
    fi
    printf '%s' "$major"
}

MAJOR=$(detect_major)
if [[ -z $MAJOR ]]; then
    echo "deps: no PostgreSQL found; installing Debian's default version" >&2
    apt_install postgresql postgresql-server-dev-all
    MAJOR=$(detect_major)
    if [[ -z $MAJOR ]]; then
        echo "deps: PostgreSQL still not found after installing it" >&2
        exit 1
    fi
fi

WANTED=(
    "postgresql-$MAJOR"
    "postgresql-server-dev-$MAJOR"
    "postgresql-$MAJOR-pgtap"
    libopenblas-dev
    liblapacke-dev
    libxgboost-dev
    liblinear-dev
    libcurl4-openssl-dev
    zlib1g-dev
    python3-botocore
    chromium
    python3-xgboost
    python3-numpy
    python3-psycopg2
    python3-sklearn
    libtap-parser-sourcehandler-pgtap-perl
    libipc-run-perl
    perl
    make
    gcc
    libc6-dev
    sqlsmith
    valgrind
    clang
    libclang-rt-14-dev
    libfuzzer-14-dev
)

MISSING=()
for pkg in "${WANTED[@]}"; do
    is_installed "$pkg" || MISSING+=("$pkg")
done

if [[ ${#MISSING[@]} -eq 0 ]]; then
    echo "deps: all present"
    exit 0
fi

apt_install "${MISSING[@]}"

for pkg in "${MISSING[@]}"; do
    if ! is_installed "$pkg"; then
        echo "deps: package $pkg is still not installed" >&2
        exit 1
    fi
done
echo "deps: installed ${MISSING[*]}"
