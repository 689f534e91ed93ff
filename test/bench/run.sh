#!/usr/bin/env bash
# test/bench/run.sh: performance benchmark of pgmaker (`make bench`).
#
# Builds and installs the extension, starts a private throwaway cluster
# (scripts/cluster.sh), loads a table t of BENCH_ROWS rows with 20 float8
# features c1..c20 and a float8 target y (a fixed linear combination of the
# features plus noise, reproducible through setseed), and measures:
#
#   1. the baseline scan   SELECT sum(c1+...+c20+y) FROM t
#   2. ml.train('bench', 't', 'y', 'linear', deploy => 'always'), and its
#      ratio to (1)                                       target <= 2.0
#   3. SELECT sum(ml.predict('bench', t)) FROM t, and its ratio to (1),
#      without parallel workers and with them             target <= 2.0
#   4. pgbench -M prepared: ml.predict on a float8[] of 20 constants versus
#      selecting the same array; the TPS ratio            target >= 0.70
#   5. the training backend's memory: the peak growth of its private
#      (anonymous) memory during ml.train, against the 160 MB of a
#      1M x 20 float8 feature matrix                      target <= 1.5x
#
# Timings are taken server side, with clock_timestamp() around each
# statement in one psql session (no connection cost in the figure), and
# the median of several runs is reported.  A summary table ends the output.
#
# Environment:
#   BENCH_ROWS             rows of t (default 1000000); smaller for a quick check
#   BENCH_REPS             runs of the scan and predict queries (default 5)
#   BENCH_TRAIN_REPS       runs of ml.train (default 3)
#   BENCH_PGBENCH_SECONDS  length of one pgbench run (default 10)
#   BENCH_PGBENCH_ROUNDS   alternating pgbench runs of each script (default 3)
#   BENCH_STRICT           when 1, exit with status 1 if a target is missed
#   BENCH_SKIP_BUILD       when 1, skip make && make install
set -euo pipefail

PROG=${0##*/}
ROOT=$(cd "$(dirname "$0")/../.." && pwd -P)
BENCH_DIR=$ROOT/test/bench

ROWS=${BENCH_ROWS:-1000000}
REPS=${BENCH_REPS:-5}
TRAIN_REPS=${BENCH_TRAIN_REPS:-3}
PGB_SECONDS=${BENCH_PGBENCH_SECONDS:-10}
PGB_ROUNDS=${BENCH_PGBENCH_ROUNDS:-3}
STRICT=${BENCH_STRICT:-0}
NFEAT=20

die() { echo "$PROG: $*" >&2; exit 1; }
say() { echo "== $*"; }

for v in ROWS REPS TRAIN_REPS PGB_SECONDS PGB_ROUNDS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done

command -v pg_config >/dev/null 2>&1 || die "pg_config not found"
PATH="$(pg_config --bindir):$PATH"
export PATH
command -v pgbench >/dev/null 2>&1 || die "pgbench not found in $(pg_config --bindir)"

cd "$ROOT"
T_START=$(date +%s)

# ---------------------------------------------------------------- build
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z $(git -C "$ROOT" status --porcelain -- src sql Makefile 2>/dev/null) ]] ||
    COMMIT+=" + local changes"
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    say "build and install"
    make -s
    make -s install >/dev/null
fi

# ---------------------------------------------------------------- cluster
WORK=$(mktemp -d /tmp/pgmaker-bench.XXXXXX)
chmod 0755 "$WORK"
CLUSTER=""
# shellcheck disable=SC2317  # called through the trap
cleanup() {
    # a memory poller still running stops on this file or with the backend
    touch "$WORK/poll.stop" 2>/dev/null || true
    if [[ -n $CLUSTER ]]; then
        scripts/cluster.sh stop "$CLUSTER" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

say "start a private cluster"
CLUSTER=$(scripts/cluster.sh start | tail -n 1)
# shellcheck disable=SC1091
source "$CLUSTER/env"

psql_run() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

psql_run -c "CREATE EXTENSION pgmaker"

# ---------------------------------------------------------------- data
# y = 3 + sum(coef_k * ck) + noise, coef_k = ((7k) mod 11 - 5) / 2 in [-2.5, 2.5]
cols="" feats="" ysum="3.0" sumexpr="" arr=""
for ((k = 1; k <= NFEAT; k++)); do
    cols+="${cols:+, }c$k"
    feats+="${feats:+, }random() AS c$k"
    ysum+=" + $(awk -v k=$k 'BEGIN { printf "%.1f", ((7 * k) % 11 - 5) / 2 }')*c$k"
    sumexpr+="c$k+"
    arr+="${arr:+,}$(awk -v k=$k 'BEGIN { printf "%.2f", 0.05 * k }')"
done
sumexpr+="y"
ARRAY_LIT="ARRAY[$arr]::float8[]"

say "create table t: $ROWS rows x $NFEAT float8 features + float8 target"
psql_run <<SQL
SELECT setseed(0.42) \g /dev/null
CREATE TABLE t AS
SELECT $cols, $ysum + 0.1 * (random() - 0.5) AS y
  FROM (SELECT $feats FROM generate_series(1, $ROWS) OFFSET 0) s;
VACUUM (ANALYZE) t;
SQL

TABLE_BYTES=$(psql_run -c "SELECT pg_table_size('t')")
PG_VERSION_STR=$(psql_run -c "SHOW server_version")
JIT=$(psql_run -c "SHOW jit")
SHARED_BUFFERS=$(psql_run -c "SHOW shared_buffers")
echo "   table t: $(awk -v b="$TABLE_BYTES" 'BEGIN { printf "%.1f MB", b / 1048576 }')," \
    "PostgreSQL $PG_VERSION_STR, shared_buffers $SHARED_BUFFERS, jit $JIT, $(nproc) CPUs, commit $COMMIT"

# ---------------------------------------------------------------- helpers
# Writes psql lines that time one statement server side and \echo
# "TIMING <label> <ms>".
timed() {
    local label=$1 sql=$2
    cat <<SQL
SELECT clock_timestamp() AS bench_t0 \gset
$sql \g /dev/null
SELECT round(extract(epoch FROM clock_timestamp() - :'bench_t0'::timestamptz) * 1000, 3) AS bench_ms \gset
\echo TIMING $label :bench_ms
SQL
}

# median of the numbers on stdin
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# median of the TIMING lines of a label in a file
timing_median() { awk -v l="$2" '$1 == "TIMING" && $2 == l { print $3 }' "$1" | median; }
timing_all() { awk -v l="$2" '$1 == "TIMING" && $2 == l { printf "%s%s", s, $3; s = " " }' "$1"; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || a == "nan" || b == "nan") print "nan"; else printf "%.2f\n", a / b }'; }

SCAN_SQL="SELECT sum($sumexpr) FROM t"
TRAIN_SQL="SELECT * FROM ml.train('bench', 't', 'y', 'linear', deploy => 'always')"
PREDICT_SQL="SELECT sum(ml.predict('bench', t)) FROM t"

# ---------------------------------------------------------------- 2. train
say "ml.train: $TRAIN_REPS runs (after one warm-up scan)"
{
    echo "SET max_parallel_workers_per_gather = 0;"
    echo "$SCAN_SQL \\g /dev/null"
    for ((i = 1; i <= TRAIN_REPS; i++)); do
        timed train "$TRAIN_SQL"
        echo "SELECT 'FIT ' || round((fit_seconds * 1000)::numeric, 3) FROM ml.models ORDER BY id DESC LIMIT 1;"
    done
    echo "SELECT 'METRICS ' || metrics::text FROM ml.models ORDER BY id DESC LIMIT 1;"
} >"$WORK/train.sql"
psql_run -f "$WORK/train.sql" >"$WORK/train.out"
TRAIN_MS=$(timing_median "$WORK/train.out" train)
FIT_MS=$(awk '$1 == "FIT" { print $2 }' "$WORK/train.out" | median)
echo "   runs (ms): $(timing_all "$WORK/train.out" train)"
echo "   of which fit_seconds (PipelineFit + solver, from ml.models), median: $FIT_MS ms;" \
    "the rest (reading the source, split, evaluation, catalog): $(awk -v a="$TRAIN_MS" -v b="$FIT_MS" 'BEGIN { printf "%.0f", a - b }') ms"
echo "   hold-out metrics: $(awk '$1 == "METRICS" { $1 = ""; print substr($0, 2) }' "$WORK/train.out")"

# ---------------------------------------------------------------- 1 + 3. scan and predict
# Scan and predict alternate, so that drift hits both alike.
scan_predict() {
    local mode=$1 workers=$2
    {
        echo "SET max_parallel_workers_per_gather = $workers;"
        echo "$SCAN_SQL \\g /dev/null"
        echo "$PREDICT_SQL \\g /dev/null"
        for ((i = 1; i <= REPS; i++)); do
            timed "scan_$mode" "$SCAN_SQL"
            timed "predict_$mode" "$PREDICT_SQL"
        done
        echo "EXPLAIN (COSTS OFF) $PREDICT_SQL;"
    } >"$WORK/$mode.sql"
    psql_run -f "$WORK/$mode.sql" >"$WORK/$mode.out"
}

say "scan and predict without parallel workers: $REPS runs each"
scan_predict serial 0
SCAN_MS=$(timing_median "$WORK/serial.out" scan_serial)
PRED_MS=$(timing_median "$WORK/serial.out" predict_serial)
echo "   scan    runs (ms): $(timing_all "$WORK/serial.out" scan_serial)"
echo "   predict runs (ms): $(timing_all "$WORK/serial.out" predict_serial)"

DEFAULT_WORKERS=$(psql_run -c "SELECT boot_val FROM pg_settings WHERE name = 'max_parallel_workers_per_gather'")
say "scan and predict with max_parallel_workers_per_gather = $DEFAULT_WORKERS: $REPS runs each"
scan_predict parallel "$DEFAULT_WORKERS"
PSCAN_MS=$(timing_median "$WORK/parallel.out" scan_parallel)
PPRED_MS=$(timing_median "$WORK/parallel.out" predict_parallel)
PWORKERS=$(sed -n 's/^ *Workers Planned: \([0-9]*\)$/\1/p' "$WORK/parallel.out" | head -n 1)
PWORKERS=${PWORKERS:-0}
echo "   scan    runs (ms): $(timing_all "$WORK/parallel.out" scan_parallel)"
echo "   predict runs (ms): $(timing_all "$WORK/parallel.out" predict_parallel)"
echo "   predict plan: $PWORKERS parallel workers planned"

# ---------------------------------------------------------------- 4. pgbench
say "pgbench -M prepared -c 2 -j 2 -T $PGB_SECONDS: $PGB_ROUNDS alternating rounds per script"
echo "SELECT ml.predict('bench', $ARRAY_LIT);" >"$WORK/predict.pgb"
echo "SELECT $ARRAY_LIT;" >"$WORK/array.pgb"
# Returning the 20-element array costs its text output; a query returning one
# number is the stricter floor, reported for information.
echo "SELECT cardinality($ARRAY_LIT);" >"$WORK/scalar.pgb"
pgbench_tps() {
    local script=$1 out
    out=$(pgbench -n -M prepared -c 2 -j 2 -T "$PGB_SECONDS" -f "$script" 2>&1) || {
        echo "$out" >&2
        die "pgbench failed on $script"
    }
    grep -E 'number of failed transactions: [1-9]' <<<"$out" >&2 && die "pgbench had failed transactions"
    sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' <<<"$out"
}
: >"$WORK/pgbench.out"
for ((i = 1; i <= PGB_ROUNDS; i++)); do
    for s in array predict scalar; do
        tps=$(pgbench_tps "$WORK/$s.pgb")
        [[ -n $tps ]] || die "no TPS in the pgbench output for $s"
        echo "$s $tps" >>"$WORK/pgbench.out"
    done
done
TPS_ARRAY=$(awk '$1 == "array" { print $2 }' "$WORK/pgbench.out" | median)
TPS_PRED=$(awk '$1 == "predict" { print $2 }' "$WORK/pgbench.out" | median)
TPS_SCALAR=$(awk '$1 == "scalar" { print $2 }' "$WORK/pgbench.out" | median)
echo "   SELECT array      TPS: $(awk '$1 == "array" { printf "%s%.0f", s, $2; s = " " }' "$WORK/pgbench.out")"
echo "   SELECT ml.predict TPS: $(awk '$1 == "predict" { printf "%s%.0f", s, $2; s = " " }' "$WORK/pgbench.out")"
echo "   SELECT cardinality(array) (one number, folded at plan time) TPS:" \
    "$(awk '$1 == "scalar" { printf "%s%.0f", s, $2; s = " " }' "$WORK/pgbench.out")"

# ---------------------------------------------------------------- 5. memory
# One more training run in a fresh session, with /proc/<backend>/status read
# by test/bench/memprobe.sh right before and right after ml.train (through
# psql's \!, so in the same session), the peak RSS (VmHWM) reset just
# before, and a poller sampling the backend's anonymous RSS meanwhile.
say "memory of the training backend"
export BENCH_WORK=$WORK BENCH_PROBE=$BENCH_DIR/memprobe.sh
psql_run >"$WORK/mem.out" <<SQL
SELECT count(*) FROM ml.models \g /dev/null
SELECT pg_backend_pid() AS bench_pid \gset
\setenv BENCH_PID :bench_pid
\! "\$BENCH_PROBE" snap "\$BENCH_PID" > "\$BENCH_WORK/mem.before"
\! "\$BENCH_PROBE" reset "\$BENCH_PID" > "\$BENCH_WORK/mem.reset"
\! "\$BENCH_PROBE" start "\$BENCH_PID" "\$BENCH_WORK"
$TRAIN_SQL \g /dev/null
\! "\$BENCH_PROBE" snap "\$BENCH_PID" > "\$BENCH_WORK/mem.after"
\! "\$BENCH_PROBE" stop "\$BENCH_WORK"
SQL
read -r B_RSS B_HWM B_ANON B_FILE B_SHMEM <"$WORK/mem.before"
read -r A_RSS A_HWM A_ANON A_FILE A_SHMEM <"$WORK/mem.after"
read -r P_ANON P_RSS P_SAMPLES <"$WORK/poll.out"
HWM_RESET=$(cat "$WORK/mem.reset")
MATRIX_MB=$(awk -v n="$ROWS" -v p="$NFEAT" 'BEGIN { printf "%.1f", n * p * 8 / 1e6 }')
# VmHWM minus the file and shared-memory pages mapped at the end (both only
# grow while the backend runs) is a lower bound of the anonymous peak; the
# poller gives another (it samples); the larger one is reported.
MEM=$(awk -v bhwm="$B_HWM" -v brss="$B_RSS" -v banon="$B_ANON" -v ahwm="$A_HWM" \
    -v afile="$A_FILE" -v ashm="$A_SHMEM" -v pan="$P_ANON" -v reset="$HWM_RESET" 'BEGIN {
    hwm_anon = ahwm - afile - ashm
    peak_anon = (pan > hwm_anon) ? pan : hwm_anon
    printf "%.1f %.1f %.1f %.1f", (ahwm - brss) / 1024, (peak_anon - banon) / 1024,
        (pan - banon) / 1024, (hwm_anon - banon) / 1024 }')
read -r RAW_MB PRIV_MB POLL_MB HWMANON_MB <<<"$MEM"
echo "   before ml.train (kB): VmRSS $B_RSS, RssAnon $B_ANON, RssFile $B_FILE, RssShmem $B_SHMEM"
echo "   after  ml.train (kB): VmRSS $A_RSS, VmHWM $A_HWM (peak; $HWM_RESET before training)," \
    "RssAnon $A_ANON, RssFile $A_FILE, RssShmem $A_SHMEM"
echo "   poller: peak RssAnon $P_ANON kB, peak VmRSS $P_RSS kB over $P_SAMPLES samples"
echo "   peak RSS growth (VmHWM - VmRSS before): $RAW_MB MB; it counts shared buffers and"
echo "   library pages the backend touched, which are not the training data."
echo "   peak private growth (anonymous memory, peak - before): $PRIV_MB MB"
echo "   (from VmHWM - RssFile - RssShmem: $HWMANON_MB MB; from the poller: $POLL_MB MB)"
[[ $HWM_RESET == reset ]] ||
    echo "   note: VmHWM could not be reset; it may include peaks from before ml.train"

# ---------------------------------------------------------------- summary
TRAIN_RATIO=$(ratio "$TRAIN_MS" "$SCAN_MS")
PRED_RATIO=$(ratio "$PRED_MS" "$SCAN_MS")
PPRED_RATIO=$(ratio "$PPRED_MS" "$PSCAN_MS")
TPS_RATIO=$(ratio "$TPS_PRED" "$TPS_ARRAY")
TPS_SRATIO=$(ratio "$TPS_PRED" "$TPS_SCALAR")
MEM_RATIO=$(ratio "$PRIV_MB" "$MATRIX_MB")
RAW_RATIO=$(ratio "$RAW_MB" "$MATRIX_MB")

MISSED=0
verdict() { # value op limit
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        if (v == "nan" || v == "") { print "n/a"; exit }
        ok = (op == "<=") ? (v + 0 <= l + 0) : (v + 0 >= l + 0)
        print ok ? "PASS" : "FAIL" }'
}
row() { printf '%-44s %-24s %-12s %s\n' "$1" "$2" "$3" "$4"; }
check() { # figure measured op limit
    local v
    v=$(verdict "$3" "$4" "$5")
    [[ $v == PASS ]] || MISSED=1
    row "$1" "$2" "$4 $5" "$v"
}

echo
say "summary ($ROWS rows x $NFEAT features; medians; $(($(date +%s) - T_START)) s in all)"
row "figure" "measured" "target" "result"
row "--------------------------------------------" "------------------------" "------------" "------"
row "1. scan sum(c1..c20+y), no workers" "$SCAN_MS ms" "-" "-"
row "   scan, parallel ($PWORKERS workers planned)" "$PSCAN_MS ms" "-" "-"
check "2. ml.train linear / scan" "$TRAIN_MS ms = ${TRAIN_RATIO}x" "$TRAIN_RATIO" "<=" 2.0
check "3. sum(ml.predict(t)) / scan, no workers" "$PRED_MS ms = ${PRED_RATIO}x" "$PRED_RATIO" "<=" 2.0
check "   sum(ml.predict(t)) / scan, parallel" "$PPRED_MS ms = ${PPRED_RATIO}x" "$PPRED_RATIO" "<=" 2.0
row "4. pgbench SELECT ARRAY[20]" "$(printf '%.0f' "$TPS_ARRAY") tps" "-" "-"
check "   pgbench ml.predict(ARRAY[20]) / array" "$(printf '%.0f' "$TPS_PRED") tps = ${TPS_RATIO}x" "$TPS_RATIO" ">=" 0.70
row "   pgbench ml.predict / one-number query" "$(printf '%.0f' "$TPS_SCALAR") tps; ${TPS_SRATIO}x" "(info)" "-"
check "5. train private memory peak / ${MATRIX_MB} MB" "$PRIV_MB MB = ${MEM_RATIO}x" "$MEM_RATIO" "<=" 1.5
row "   train VmHWM - VmRSS before (info)" "$RAW_MB MB = ${RAW_RATIO}x" "(info)" "-"

if [[ $MISSED -ne 0 && $STRICT == 1 ]]; then
    exit 1
fi
exit 0
