#!/usr/bin/env bash
# scripts/soak.sh: zero-downtime soak test, as invoked by `make soak` (not
# part of `make test`).
#
# Builds and installs the extension (unless SOAK_BUILD=0), starts a private
# cluster (scripts/cluster.sh; stopped on exit, also on failure), creates a
# table soak_data of 10,000 rows (10 float8 features x1..x10 and a target y),
# trains project 'soak', then runs pgbench (-M prepared -c 4 -j 2 -T SECONDS)
# with one statement, SELECT ml.predict('soak', ARRAY[...10 numbers...]),
# twice:
#   1. alone;
#   2. while a bash loop with psql trains and deploys SOAK_DEPLOYS times
#      (ridge with alpha = i, deploy => 'always'), spread evenly over the run.
# It reports the TPS of both runs, pgbench's failed transactions and the
# deployments made. The exit status is non-zero if pgbench failed or reported
# a failed transaction, or a deployment did not happen.
#
# Environment:
#   SOAK_SECONDS   length of each pgbench run in seconds (default 60)
#   SOAK_DEPLOYS   deployments during the second run (default 20)
#   SOAK_BUILD     0: use the installed extension, do not build or install
#   PGMAKER_PRELOAD, PG_CONFIG  as for scripts/cluster.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
exec </dev/null

SECONDS_PER_RUN=${SOAK_SECONDS:-60}
DEPLOYS=${SOAK_DEPLOYS:-20}
BUILD=${SOAK_BUILD:-1}
CLIENTS=4
THREADS=2
export PGMAKER_DB=${PGMAKER_DB:-pgmaker_soak}

SUDO=()
[[ $(id -u) -eq 0 ]] || SUDO=(sudo -n)

note() { echo "soak: $*"; }
fail() { echo "soak: $*" >&2; exit 1; }

[[ $SECONDS_PER_RUN =~ ^[0-9]+$ && $SECONDS_PER_RUN -ge 1 ]] ||
    fail "SOAK_SECONDS must be a positive integer, not '$SECONDS_PER_RUN'"
[[ $DEPLOYS =~ ^[0-9]+$ && $DEPLOYS -ge 1 ]] ||
    fail "SOAK_DEPLOYS must be a positive integer, not '$DEPLOYS'"

CLUSTER_DIR=""
WORK=""
LOOP_PID=""
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local rc=$?
    if [[ -n $LOOP_PID ]] && kill -0 "$LOOP_PID" 2>/dev/null; then
        kill "$LOOP_PID" 2>/dev/null || true
        wait "$LOOP_PID" 2>/dev/null || true
    fi
    if [[ -n $CLUSTER_DIR && -d $CLUSTER_DIR ]]; then
        "$ROOT/scripts/cluster.sh" stop "$CLUSTER_DIR" >/dev/null 2>&1 ||
            echo "soak: warning: could not stop cluster in $CLUSTER_DIR" >&2
    fi
    [[ -n $WORK && -d $WORK ]] && rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PG_CONFIG=${PG_CONFIG:-$(command -v pg_config || true)}
[[ -n $PG_CONFIG ]] || fail "pg_config not found (run scripts/deps.sh)"
export PG_CONFIG
BINDIR=$("$PG_CONFIG" --bindir)
PGBENCH=$BINDIR/pgbench
PSQL=$BINDIR/psql
[[ -x $PGBENCH ]] || fail "pgbench not found at $PGBENCH"

if [[ $BUILD != 0 ]]; then
    note "building and installing pgmaker"
    make -s -j"$(nproc)" PG_CONFIG="$PG_CONFIG" >/dev/null || fail "build failed (run make to see why)"
    "${SUDO[@]}" make -s install PG_CONFIG="$PG_CONFIG" >/dev/null || fail "make install failed"
fi

note "starting a private cluster"
cluster_out=$("$ROOT/scripts/cluster.sh" start) || fail "could not start the cluster"
CLUSTER_DIR=$(printf '%s\n' "$cluster_out" | tail -n 1)
[[ -f $CLUSTER_DIR/env ]] || fail "cluster did not write $CLUSTER_DIR/env"
# shellcheck disable=SC1091
source "$CLUSTER_DIR/env"

WORK=$(mktemp -d /tmp/pgmaker-soak.XXXXXX)

sql() { "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

note "creating soak_data (10,000 rows, 10 features) and training project 'soak'"
sql <<'SQL' || fail "setup failed"
SET client_min_messages = warning;
CREATE EXTENSION pgmaker;
SELECT setseed(0.5) \gset
CREATE TABLE soak_data AS
SELECT x[1] AS x1, x[2] AS x2, x[3] AS x3, x[4] AS x4, x[5] AS x5,
       x[6] AS x6, x[7] AS x7, x[8] AS x8, x[9] AS x9, x[10] AS x10,
       3 + 1.5 * x[1] - 2 * x[2] + 0.5 * x[3] + x[4] - 0.25 * x[5]
         + 0.75 * x[6] - x[7] + 2.5 * x[8] - 1.25 * x[9] + 0.1 * x[10]
         + (random() - 0.5) AS y
  FROM (SELECT ARRAY(SELECT random() * 10 FROM generate_series(1, 10) WHERE g > 0) AS x
          FROM generate_series(1, 10000) g) s;
ANALYZE soak_data;
SQL
rows=$(sql -c "SELECT count(*) FROM soak_data")
[[ $rows == 10000 ]] || fail "soak_data has $rows rows, not 10000"
first_model=$(sql -c "SET client_min_messages = warning" \
    -c "SELECT model_id FROM ml.train('soak', 'soak_data', 'y', 'linear', deploy => 'always')") ||
    fail "training project 'soak' failed"

cat >"$WORK/predict.sql" <<'SQL'
SELECT ml.predict('soak', ARRAY[1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 0.5]::float8[]);
SQL
prediction=$(sql -c "SELECT ml.predict('soak', ARRAY[1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 0.5]::float8[])") ||
    fail "ml.predict failed before the runs"
note "model $first_model is live; the benchmark's prediction: $prediction"

# run_pgbench NAME: runs pgbench, keeps its output in $WORK/NAME.out and sets
# TPS, XACTS and FAILED from it; returns pgbench's exit status.
TPS="" XACTS="" FAILED=""
run_pgbench() {
    local name=$1 out=$WORK/$1.out rc=0 progress=()
    [[ $SECONDS_PER_RUN -ge 20 ]] && progress=(-P 10)
    "$PGBENCH" -n -M prepared -c "$CLIENTS" -j "$THREADS" -T "$SECONDS_PER_RUN" \
        "${progress[@]}" -f "$WORK/predict.sql" >"$out" 2>&1 || rc=$?
    sed 's/^/    /' "$out"
    TPS=$(sed -n -E 's/^tps = ([0-9.]+) \(without initial connection time\).*/\1/p' "$out" | tail -n 1)
    XACTS=$(sed -n -E 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$out" | tail -n 1)
    FAILED=$(sed -n -E 's/^number of failed transactions: ([0-9]+).*/\1/p' "$out" | tail -n 1)
    # Errors other than serialization/deadlock failures abort the client
    # (exit status 2) rather than count as failed transactions.
    if grep -q 'aborted in command' "$out"; then
        note "$name: a pgbench client was aborted by an error"
        [[ $rc -ne 0 ]] || rc=2
    fi
    return "$rc"
}

now_ns() { date +%s%N; }

# deploy_loop START_NS: trains and deploys DEPLOYS times, the i-th at
# START_NS + i * SECONDS / (DEPLOYS + 1); one line a deployment in
# $WORK/deploys.log: "i end_ns model_id deployed".
deploy_loop() {
    local start=$1 i target now line
    for ((i = 1; i <= DEPLOYS; i++)); do
        target=$((start + i * SECONDS_PER_RUN * 1000000000 / (DEPLOYS + 1)))
        now=$(now_ns)
        if ((target > now)); then
            sleep "$(printf '%d.%09d' $(((target - now) / 1000000000)) $(((target - now) % 1000000000)))"
        fi
        if line=$(sql -F ' ' -c "SET client_min_messages = warning" -c \
            "SELECT model_id, deployed FROM ml.train('soak', 'soak_data', 'y', 'ridge',
                    hyperparams => jsonb_build_object('alpha', $i), deploy => 'always')" 2>>"$WORK/deploys.err"); then
            echo "$i $(now_ns) $line" >>"$WORK/deploys.log"
        else
            echo "$i $(now_ns) error" >>"$WORK/deploys.log"
        fi
    done
}

RC=0

echo
note "run 1: pgbench alone (${SECONDS_PER_RUN} s, $CLIENTS clients, $THREADS threads, -M prepared)"
rc1=0
run_pgbench alone || rc1=$?
TPS1=$TPS XACTS1=$XACTS FAILED1=$FAILED

echo
note "run 2: pgbench while $DEPLOYS trainings with deploy => 'always' run"
: >"$WORK/deploys.log"
deploy_loop "$(now_ns)" &
LOOP_PID=$!
rc2=0
run_pgbench deploying || rc2=$?
bench_end=$(now_ns)
TPS2=$TPS XACTS2=$XACTS FAILED2=$FAILED
wait "$LOOP_PID" || true
LOOP_PID=""

deployed=$(awk '$4 == "t"' "$WORK/deploys.log" | wc -l)
late=$(awk -v end="$bench_end" '$4 == "t" && $2 > end' "$WORK/deploys.log" | wc -l)
live=$(sql -c "SELECT live_model FROM ml.overview WHERE project = 'soak'")
last=$(awk '$4 == "t" { m = $3 } END { print m }' "$WORK/deploys.log")
catalog=$(sql -c "SELECT count(*) FROM ml.deployments d JOIN ml.projects p ON p.id = d.project_id
                   WHERE p.name = 'soak' AND d.model_id <> $first_model")
if [[ -s $WORK/deploys.err ]]; then
    echo "---- deploy loop errors ----"
    cat "$WORK/deploys.err"
fi
log_errors=$(grep -c -E '(ERROR|FATAL|PANIC):' "$CLUSTER_DIR/postgres.log" || true)

echo
echo "==== soak summary ===="
printf 'pgbench: -M prepared -c %d -j %d -T %d, one ml.predict per transaction\n' \
    "$CLIENTS" "$THREADS" "$SECONDS_PER_RUN"
printf 'run 1, predicting only:        tps %s, transactions %s, failed %s\n' \
    "${TPS1:-?}" "${XACTS1:-?}" "${FAILED1:-?}"
printf 'run 2, with deployments:       tps %s, transactions %s, failed %s\n' \
    "${TPS2:-?}" "${XACTS2:-?}" "${FAILED2:-?}"
if [[ -n $TPS1 && -n $TPS2 ]]; then
    awk -v a="$TPS1" -v b="$TPS2" 'BEGIN { if (a > 0) printf "tps change with deployments:   %+.1f%%\n", (b - a) * 100 / a }'
fi
printf 'deployments made during run 2: %d of %d (%d finished after pgbench ended)\n' \
    "$deployed" "$DEPLOYS" "$late"
printf 'ml.deployments rows for them:  %s; live model %s (last deployed %s)\n' \
    "$catalog" "$live" "${last:-none}"
printf 'server log errors:             %s\n' "$log_errors"

problems=()
[[ $rc1 -eq 0 ]] || problems+=("run 1: pgbench exit status $rc1")
[[ $rc2 -eq 0 ]] || problems+=("run 2: pgbench exit status $rc2")
[[ $FAILED1 == 0 ]] || problems+=("run 1: failed transactions: ${FAILED1:-not reported}")
[[ $FAILED2 == 0 ]] || problems+=("run 2: failed transactions: ${FAILED2:-not reported}")
[[ $deployed -eq $DEPLOYS ]] || problems+=("only $deployed of $DEPLOYS deployments were made")
[[ $catalog == "$DEPLOYS" ]] || problems+=("ml.deployments has $catalog rows for the new models, not $DEPLOYS")
[[ $live == "$last" ]] || problems+=("live model $live is not the last deployed model ${last:-none}")
[[ $log_errors == 0 ]] || problems+=("$log_errors errors in the server log")
if [[ ${#problems[@]} -gt 0 ]]; then
    for p in "${problems[@]}"; do echo "soak: FAILED: $p"; done
    echo "---- server log errors (first 20) ----"
    grep -E '(ERROR|FATAL|PANIC):' "$CLUSTER_DIR/postgres.log" | head -n 20 || true
    RC=1
else
    echo "soak: passed"
fi
exit "$RC"
