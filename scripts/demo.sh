#!/usr/bin/env bash
# scripts/demo.sh: pgmaker demonstration, as invoked by `make demo`.
#
# Installs missing dependencies, builds and installs the extension, starts a
# private cluster (scripts/cluster.sh; stopped on exit unless kept), loads the
# sample data sets (test/data/load.sql), then runs scripts/demo.sql with psql
# echoing each statement before its result.
#
# Environment:
#   PGMAKER_DEMO_KEEP=1  leave the cluster running afterwards and print how
#                        to connect to it (stop it with scripts/cluster.sh stop)
#   PGMAKER_DEMO_SQL     SQL file to run instead of scripts/demo.sql
#   PGMAKER_REPORT_DIR   afterwards, write ml.report's page of every project
#                        there, as PROJECT.html (`make report`)
#   PGMAKER_PRELOAD      shared_preload_libraries of the cluster (default:
#                        pgmaker; see scripts/cluster.sh)
#   PG_CONFIG            pg_config to use (default: pg_config on PATH)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
exec </dev/null

DEMO_SQL=${PGMAKER_DEMO_SQL:-scripts/demo.sql}
KEEP=${PGMAKER_DEMO_KEEP:-0}
export PGMAKER_DB=${PGMAKER_DB:-pgmaker_demo}

SUDO=()
[[ $(id -u) -eq 0 ]] || SUDO=(sudo -n)

CLUSTER_DIR=""
cleanup() {
    local rc=$?
    if [[ -n $CLUSTER_DIR && -d $CLUSTER_DIR ]]; then
        if [[ $KEEP == 1 && $rc -eq 0 ]]; then
            echo
            echo "demo: cluster left running in $CLUSTER_DIR"
            echo "demo:   connect: scripts/cluster.sh psql $CLUSTER_DIR"
            echo "demo:   stop:    scripts/cluster.sh stop $CLUSTER_DIR"
        else
            "$ROOT/scripts/cluster.sh" stop "$CLUSTER_DIR" >/dev/null 2>&1 ||
                echo "demo: warning: could not stop cluster in $CLUSTER_DIR" >&2
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT

fail() { echo "demo: $*" >&2; exit 1; }

[[ -f $DEMO_SQL ]] || fail "demo SQL file not found: $DEMO_SQL"

echo "demo: checking dependencies"
"$ROOT/scripts/deps.sh" || fail "scripts/deps.sh failed"

PG_CONFIG=${PG_CONFIG:-$(command -v pg_config || true)}
[[ -n $PG_CONFIG ]] || fail "pg_config not found"
export PG_CONFIG
BINDIR=$("$PG_CONFIG" --bindir)

echo "demo: building and installing pgmaker"
make -s -j"$(nproc)" PG_CONFIG="$PG_CONFIG" >/dev/null || fail "build failed (run make to see why)"
"${SUDO[@]}" make -s install PG_CONFIG="$PG_CONFIG" >/dev/null || fail "make install failed"

echo "demo: starting a private cluster"
cluster_out=$("$ROOT/scripts/cluster.sh" start) || fail "could not start the cluster"
CLUSTER_DIR=$(printf '%s\n' "$cluster_out" | tail -n 1)
# shellcheck disable=SC1091
source "$CLUSTER_DIR/env"

echo
echo "demo: loading the sample data sets (test/data/load.sql)"
"$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -f test/data/load.sql ||
    fail "loading the data sets failed"

# a copy the server can read, for the ml.load step (a file:// URL)
cp test/data/seattle_weather.csv "$CLUSTER_DIR/seattle_weather.csv" &&
    chmod a+r "$CLUSTER_DIR/seattle_weather.csv" || fail "could not copy the data for ml.load"

echo
echo "demo: running $DEMO_SQL"
"$BINDIR/psql" -X -v ON_ERROR_STOP=1 -v load_url="file://$CLUSTER_DIR/seattle_weather.csv" \
    --echo-queries -f "$DEMO_SQL" ||
    fail "$DEMO_SQL failed"

if [[ -n ${PGMAKER_REPORT_DIR:-} ]]; then
    mkdir -p "$PGMAKER_REPORT_DIR"
    for project in $("$BINDIR/psql" -X -At -c "SELECT name FROM ml.projects ORDER BY name"); do
        "$BINDIR/psql" -X -At -v ON_ERROR_STOP=1 -c "SELECT ml.report('$project')" \
            >"$PGMAKER_REPORT_DIR/$project.html" || fail "the report of $project failed"
        echo "demo: wrote $PGMAKER_REPORT_DIR/$project.html"
    done
fi

echo
echo "demo: done"
