#!/usr/bin/env bash
# test/bench/run.sh: performance benchmark of pgmaker (`make bench`).
#
# Builds and installs the extension, starts a private throwaway cluster
# (scripts/cluster.sh), loads a table t of BENCH_ROWS rows with 20 float8
# features c1..c20 and a float8 target y (a fixed linear combination of the
# features plus noise, reproducible through setseed), and measures:
#
#   1. the baseline scan   SELECT sum(c1+...+c20+y) FROM t
#   2. ml.train of three algorithms, each against the scan of its source:
#      ml.train('bench', 't', 'y', 'linear', deploy => 'always') and
#      ml.train('bridge', 't', 'y', 'ridge', deploy => 'always') (default
#      alpha) against the scan (1) of t (the same query, timed in these
#      runs), and ml.train('blog', 'tb', 'yb', 'logistic', deploy =>
#      'always') against SELECT sum(c1+...+c20+yb::int) FROM tb, where tb is
#      a view of t: its 20 features and yb = y above its median (the same
#      view as part 11's), so that both read t and compute yb.  Scan of t, linear, ridge, scan of tb and logistic alternate,
#      BENCH_TRAIN_REPS runs each after one warm-up scan of each source,
#      without parallel workers:
#      ml.train linear / scan                             target <= 1.3
#      ml.train ridge / scan                              target <= 1.3
#      ml.train logistic / scan of tb                     target <= 1.3
#      then the same five with max_parallel_workers_per_gather = 2 (the
#      default), each ml.train against the parallel scan of its source, for
#      information.
#   3. SELECT sum(ml.predict('bench', t)) FROM t, and its ratio to (1),
#      without parallel workers and with them             target <= 1.5
#      and, in the same alternating runs, SELECT count(t) FROM t: the cost
#      of the whole-row value that the executor builds for ml.predict's
#      argument (a copy of each row), against (1) and against predict, for
#      information
#      and, for information, SELECT sum(ml.predict('bx', t)) FROM t, the
#      xgboost model of 100 trees that part 6 trains (its last model,
#      deployed by ml.deploy('bx', 'most_recent') after part 6), against the
#      scan of the same table, alternating, BENCH_REPS runs each, without
#      parallel workers; when one run over t would take more than 20 s
#      (extrapolated from one run over tx, the first 100,000 rows of t), both
#      are measured on tx instead, and the summary's label says so.  This
#      figure runs after part 6.
#   4. pgbench -M prepared: ml.predict on a float8[] of 20 constants versus
#      selecting the same array; the TPS ratio            target >= 0.80
#      and, in the same alternating rounds, ml.predict('bx', the same array),
#      the xgboost model of part 6, against the array, for information.  The
#      part runs after part 6.
#   5. the training backend's memory: the peak growth of its private
#      (anonymous) memory during ml.train, against the 160 MB of a
#      1M x 20 float8 feature matrix                      target <= 1.5x
#   6. ml.train('bx', 't', 'y', 'xgboost', 100 rounds, max_depth 6, hist,
#      test_size => 0, so on all BENCH_ROWS rows) against XGBoost's own
#      time on the same rows already in memory: test/bench/xgb_baseline.py
#      run by BENCH_PYTHON (Debian's python3-xgboost and python3-numpy) on
#      the table exported once with COPY ... (FORMAT binary) into the temp
#      directory, as a float32 numpy matrix, with the same parameters and
#      nthread = ml.threads (0: every CPU, as XGBoost does in pgmaker).
#      ml.train / (DMatrix creation + training)           target <= 1.15
#      ml.train / training alone is shown for information, with fit_seconds
#      from ml.models and where the rest of ml.train's time goes.  Python
#      and ml.train runs alternate, so that drift hits both alike.
#   7. ml.train('bk', 't', NULL, 'kmeans', 8 clusters, n_init 1, max_iter
#      20, tol 0, test_size => 0): seconds per Lloyd iteration, the median
#      of the differences of consecutive elapsed_seconds in
#      ml.training_info, against one bare scan (1)         target <= 3.0
#      kmeans materialises the standardised matrix in memory first, so its
#      iterations do not read the table again.
#   8. ml.profile('t') against one query of count, avg, stddev, min and
#      max of every column of t, both without parallel workers
#      ml.profile / aggregates                            target <= 4.0
#      ml.profile of a query of computed columns (no statistics to size
#      its tables from) and the aggregates with parallel workers are shown
#      for information, and so are the profile statistics as aggregates:
#      one query of count(*) and ml.numeric_stats and ml.approx_distinct of
#      every column, without parallel workers and with them, each against
#      the plain aggregates of the same mode.
#   9. the aggregate ml.linear_fit(y, ARRAY[c1..c20]) without parallel
#      workers and with the default max_parallel_workers_per_gather,
#      alternating: the speedup of the partial aggregates
#      no workers / parallel                              target >= 1.5
#      and each against the scan (1) of the same mode, for information.
#  10. ml.train linear on the aggregate path (ml.aggregate_train_min_rows
#      = 0): without parallel workers and with them, alternating
#      no workers / parallel                              target >= 1.5
#      and each against the scan (1) of the same mode (target <= 1.3 for
#      the parallel one against the parallel scan).
#  11. the Python route (test/bench/py_route.py): psycopg2 pulls t, numpy,
#      scikit-learn LinearRegression and LogisticRegression (on y above its
#      median) with a 75/25 split, end to end, against ml.train linear (2.)
#      and ml.train logistic on the same target, alternating
#      Python / ml.train, linear                          target >= 10
#      Python / ml.train, logistic                        target >= 10
#      with the hold-out R^2 and accuracy of both side by side (within 1%).
#      In the same Python run, after the same pull: a 75/25 split and
#      XGBoost (python3-xgboost) with part 6's parameters (100 rounds,
#      max_depth 6, hist, eta 0.3, nthread as part 6 passes it), end to end
#      = pull + split + DMatrix + training (not the hold-out prediction),
#      against ml.train('bxs', 't', 'y', 'xgboost', part 6's hyperparams,
#      the default test_size 0.25, deploy => 'never'), which holds out 25%
#      too and evaluates on it; the Python run, ml.train logistic and
#      ml.train xgboost alternate, BENCH_PY_REPS runs each
#      Python / ml.train, xgboost                         target >= 1.5
#      with the hold-out R^2 of both side by side (within 1%).
#  12. scaling: ml.train linear on BENCH_ROWS / 10, BENCH_ROWS and 4 x
#      BENCH_ROWS rows, on its default path (in memory unless the rows would
#      take more than half of ml.max_train_memory) and on the aggregate path,
#      with parallel workers; time per row at 4 x against 1 x
#      aggregate path                                     target <= 1.25
#      and the private memory of one run of each path at each size; the
#      aggregate path's does not grow with the rows: 4 x / 1 x   target <= 1.25
#  13. ml.batch_predict of the 'bench' model over t with a bigint primary key,
#      from queueing to the job's end, against CREATE TABLE AS SELECT id,
#      ml.predict(...) in the session
#      CTAS time / batch_predict time, 1 worker            target >= 0.70
#      1 worker / 2 workers                                target >= 1.5
#  14. loading a CSV file of BENCH_ROWS rows (a bigint id and 20 float8
#      columns c1..c20, with a header; written by the server with COPY (SELECT
#      ...) TO a file, setseed for reproducibility) three ways, alternating,
#      each into a fresh table (made, and the cluster checkpointed, before
#      the clock starts):
#        (a) COPY load_copy FROM the file WITH (FORMAT csv, HEADER)
#        (b) ml.load over loopback HTTP, the file served by
#            test/fixtures/http_fixture.py, into load_append, created
#            beforehand with the same columns ("mode": "append")
#        (c) the same into load_create, created by ml.load itself ("mode":
#            "create", the types inferred); dropped before each run
#      COPY time / ml.load time, (b) and (c)                target >= 0.50
#      Once, untimed: the three tables have BENCH_ROWS rows and the same
#      sum(c1); if not, the part fails (its figures are errors) and the run
#      exits with status 1 whatever BENCH_STRICT says.  This part needs
#      neither t nor a model: it runs first, and alone with BENCH_ONLY=14.
#  15. ml.monitor against a plain aggregate scan of the same 20 columns:
#      the project 'bench_mon' is trained once, untimed, on t (linear, on
#      SELECT c1, ..., c20, y FROM t; deployed), which gives it a live model
#      with a baseline; then, alternating, after one untimed run of each:
#        (a) SELECT sum(c1), ..., sum(c20) FROM t
#        (b) SELECT count(*) FROM ml.monitor('bench_mon',
#            'SELECT c1, ..., c20 FROM t'), which reads the same columns once
#      both with the server's default parallel settings: the summary's
#      labels give max_parallel_workers_per_gather, and a row the workers
#      each plan has (the monitor's scan, as auto_explain shows it in one
#      more untimed run)
#      ml.monitor time / scan time                          target <= 3.0
#      Once, untimed: the monitor over the training rows (the training
#      query) reads BENCH_ROWS rows and flags nothing (no row with violated
#      true); if not, the run exits with status 1 whatever BENCH_STRICT says
#      (and when it did not read BENCH_ROWS rows, its figures are errors).
#      This part needs t but no other part: it runs right after t is made,
#      before part 2, and alone with BENCH_ONLY=15.
#  16. the cost of prediction capture: pgbench -M prepared -c 2 -j 2, one
#      prediction a transaction, SELECT ml.predict('bench_cap', tcap) FROM
#      tcap WHERE id = :id (a random id), where tcap is the first
#      min(BENCH_ROWS, 100000) rows of t with a bigint primary key id, and
#      bench_cap a linear model trained on them once, untimed (deployed);
#      runs of BENCH_CAPTURE_SECONDS alternate between the project's capture
#      rate 0 and 1 (ml.set_capture between runs)
#      TPS at rate 1 / TPS at rate 0                        target >= 0.80
#      and, over the rate-1 runs, for information: the predictions made, the
#      captures taken and dropped (deltas of ml._capture_counters()), the
#      rows ml.captured gained, and the launcher's CPU seconds a second of
#      run.  The launcher stores the captures while the rate-1 runs go on
#      (its work counts against them); after each one, outside the clock,
#      the part waits until it has stored them all, vacuums ml.captured and
#      checkpoints, so that no run pays for another's.  Capture needs
#      pgmaker in shared_preload_libraries and ml.database naming the
#      bench's database, which is how the cluster is started; when they are
#      not, the part's figures are errors.  At the end the rate is set back
#      to 0, and tcap and the captured rows are dropped.  This part needs t
#      but no other part: it runs after part 15, and alone with
#      BENCH_ONLY=16.
#  17. contextual bandits: pgbench -M prepared -c 2 -j 2, one decision a
#      transaction: ml.choose of a LinUCB bandit with 5 arms on a context of
#      5 random values, then ml.reward of that decision; runs of
#      BENCH_PGBENCH_SECONDS, BENCH_PGBENCH_ROUNDS times, alternating with
#      the same for a Beta-Bernoulli Thompson bandit (no context, info)
#      decisions a second, LinUCB                          target >= 2000
#      The part needs neither t nor a model: it runs after part 14, and alone
#      with BENCH_ONLY=17.  The bandits are dropped at the end.
#  18. categorical columns: tc is the first min(BENCH_ROWS, 1000000) rows of
#      t with three more text columns k10, k100 and k1000 of 10, 100 and
#      1000 distinct values ('a0'..'a9', 'b0'..'b99', 'c0'..'c999', drawn by
#      random() after setseed, so reproducible), y unchanged (the text
#      columns are noise).  ml.train('bcat', 'tc', 'y', 'linear', deploy =>
#      'never') one-hot encodes them (pgmaker's default: a slot for each of
#      the 32 most frequent categories, max_categories, and one for the
#      others); alternating with it, BENCH_TRAIN_REPS runs each, without
#      parallel workers: the scan SELECT sum(c1+...+c20+y+length(k10)+
#      length(k100)+length(k1000)) FROM tc, which reads every column, and
#      ml.train linear on tc's numeric columns alone (SELECT c1, ..., c20, y
#      FROM tc)
#      ml.train on tc / scan of tc                        (info)
#      ml.train on the numeric columns / scan of tc       (info)
#      hold-out R^2 with the text columns against without  within 1%
#      The time ratio is information, not a target: the encoding makes 96
#      features of the 23 columns (20 + 10 + 33 + 33), so the least-squares
#      system is about 20 times the size of part 2's, and 1.3 would hold the
#      solver, not the reading and encoding, to a scan.  The summary gives
#      the number of features.  The part needs t but no other part: it runs
#      after part 16, and alone with BENCH_ONLY=18; tc is dropped at the end.
#
# The summary is also written to test/bench/results.md, with the machine's
# CPUs, the PostgreSQL version, the commit and the wall time of the whole
# run ("make bench took N min", from the start of run.sh to the summary,
# the build included when there is one).
#
# Timings are taken server side, with clock_timestamp() around each
# statement in one psql session (no connection cost in the figure), and
# the median of several runs is reported.  Server settings are the private
# cluster's defaults (shared_buffers 128MB, jit on).  Memory is read from
# /proc/<backend>/status by test/bench/memprobe.sh; MB are 10^6 bytes.  A
# summary table ends the output.
#
# Environment:
#   BENCH_ROWS             rows of t (default 1000000); smaller for a quick check
#   BENCH_REPS             runs of the scan and predict queries (default 5)
#   BENCH_TRAIN_REPS       runs of ml.train in parts 2, 10 and 18 (default 3)
#   BENCH_PGBENCH_SECONDS  length of one pgbench run (default 10)
#   BENCH_PGBENCH_ROUNDS   alternating pgbench runs of each script (default 3)
#   BENCH_STRICT           when 1, exit with status 1 if a target is missed
#                          or a figure could not be measured (ERROR)
#   BENCH_SKIP_BUILD       when 1, skip make && make install
#   BENCH_XGB_REPS         alternating runs of ml.train xgboost and of the
#                          Python XGBoost baseline (default 2)
#   BENCH_KMEANS_REPS      runs of ml.train kmeans (default 3)
#   BENCH_PYTHON           the Python with xgboost and numpy (default
#                          /usr/bin/python3, Debian's; not a pyenv one)
#   BENCH_PROFILE_REPS     alternating runs of ml.profile and of the aggregates
#                          (default 3)
#   BENCH_PY_REPS          alternating runs of the Python route and of
#                          ml.train logistic and xgboost (default 2)
#   BENCH_SCALE_REPS       runs of each size and path of the scaling part
#                          (default 2)
#   BENCH_BATCH_REPS       alternating runs of the batch prediction part
#                          (default 2)
#   BENCH_LOAD_REPS        alternating runs of each contender of the load part
#                          (default 3)
#   BENCH_MONITOR_REPS     alternating runs of each contender of the monitor
#                          part (default 3)
#   BENCH_CAPTURE_SECONDS  length of one pgbench run of the capture part
#                          (default 10)
#   BENCH_CAPTURE_ROUNDS   alternating pgbench runs of each capture rate
#                          (default 3)
#   BENCH_ONLY             a part that runs alone, 14, 15, 16, 17 or 18, or
#                          several separated by commas (14,16): run only these
#                          (on BENCH_ROWS rows, with what they need: t for 15,
#                          16 and 18) and print their summary;
#                          test/bench/results.md, which holds a full run, is
#                          left as it is
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
XGB_REPS=${BENCH_XGB_REPS:-2}
KMEANS_REPS=${BENCH_KMEANS_REPS:-3}
PYTHON=${BENCH_PYTHON:-/usr/bin/python3}
ONLY=${BENCH_ONLY:-}
# the parts BENCH_ONLY may name: they need no figure, model or table of
# another part (15, 16 and 18 need t, which is then made for them)
ALONE_PARTS="14 15 16 17 18"
NFEAT=20
XGB_ROUNDS=100

die() { echo "$PROG: $*" >&2; exit 1; }
say() { echo "== $*"; }

for v in ROWS REPS TRAIN_REPS PGB_SECONDS PGB_ROUNDS XGB_REPS KMEANS_REPS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
# ONLY becomes the parts BENCH_ONLY names, separated by spaces
only_parts=""
for p in ${ONLY//,/ }; do
    [[ " $ALONE_PARTS " == *" $p "* ]] ||
        die "BENCH_ONLY must name parts that run alone (${ALONE_PARTS// /, }), separated by commas, not '$ONLY'"
    only_parts+="${only_parts:+ }$p"
done
[[ -z $ONLY || -n $only_parts ]] || die "BENCH_ONLY names no part: '$ONLY'"
# in order, each once
ONLY=$(tr ' ' '\n' <<<"$only_parts" | sort -nu | paste -s -d ' ')
# true when part $1 runs: always in a full run, else when BENCH_ONLY names it
part_runs() { [[ -z $ONLY || " $ONLY " == *" $1 "* ]]; }

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
FIXTURE_PID=""
# shellcheck disable=SC2317  # called through the trap
cleanup() {
    # a memory poller still running stops on this file or with the backend
    touch "$WORK/poll.stop" 2>/dev/null || true
    if [[ -n $FIXTURE_PID ]]; then
        kill "$FIXTURE_PID" 2>/dev/null || true
        wait "$FIXTURE_PID" 2>/dev/null || true
    fi
    if [[ -n $CLUSTER ]]; then
        scripts/cluster.sh stop "$CLUSTER" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

say "start a private cluster"
# pgmaker preloaded whatever PGMAKER_PRELOAD says in the environment: the
# launcher runs batch predictions (13) and stores captures (16), and the
# capture ring exists only then; ml.database is the database cluster.sh
# creates, the one its env file names
CLUSTER=$(PGMAKER_PRELOAD=pgmaker scripts/cluster.sh start | tail -n 1)
# shellcheck disable=SC1091
source "$CLUSTER/env"

psql_run() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

psql_run -c "CREATE EXTENSION pgmaker"
PG_VERSION_STR=$(psql_run -c "SHOW server_version")
JIT=$(psql_run -c "SHOW jit")
SHARED_BUFFERS=$(psql_run -c "SHOW shared_buffers")

# ---------------------------------------------------------------- helpers
# Writes psql lines that time one statement server side and \echo
# "TIMING <label> <ms>", or "FAILED <label>" when the statement failed.
timed() {
    local label=$1 sql=$2
    cat <<SQL
SELECT clock_timestamp() AS bench_t0 \gset
$sql \g /dev/null
\if :ERROR
\echo FAILED $label
\else
SELECT round(extract(epoch FROM clock_timestamp() - :'bench_t0'::timestamptz) * 1000, 3) AS bench_ms \gset
\echo TIMING $label :bench_ms
\endif
SQL
}

# Runs a psql script of a section; a failing statement does not stop the
# script (its figure becomes an error) and the first error is shown.
psql_section() { # name sqlfile
    psql -X -q -At -f "$2" >"$WORK/$1.out" 2>"$WORK/$1.err" || true
    if grep -q -E '^(FAILED|ERROR)' "$WORK/$1.out" || grep -q -E 'ERROR|FATAL' "$WORK/$1.err"; then
        echo "   ERROR in $1: $(grep -m 1 -E 'ERROR|FATAL' "$WORK/$1.err" || echo "see $1.err")"
    fi
}

# median of the numbers on stdin; nan for none
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# median of the TIMING lines of a label; nan when one of its runs failed
timing_median() {
    if grep -q -E "^FAILED $2\$" "$1"; then echo nan; return; fi
    awk -v l="$2" '$1 == "TIMING" && $2 == l { print $3 }' "$1" | median
}
timing_all() {
    awk -v l="$2" '$2 == l && ($1 == "TIMING" || $1 == "FAILED") {
        printf "%s%s", s, ($1 == "TIMING" ? $3 : "error"); s = " " }' "$1"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || a == "" || b == "" || b == 0) print "nan"; else printf "%.2f\n", a / b }'; }
# relative difference of two hold-out figures, in percent
reldiff() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "nan" || b == "nan" || b == 0) print "nan"; else { d = (a - b) / b * 100; printf "%.2f\n", d < 0 ? -d : d } }'; }

# Prints the TPS of one pgbench -M prepared -c 2 -j 2 run of $WORK/NAME.pgb
# lasting SECONDS (default BENCH_PGBENCH_SECONDS), or "nan" (and the error)
# when it failed; the transactions it processed go to $WORK/NAME.xacts.
pgbench_tps() { # name [seconds]
    local name=$1 seconds=${2:-$PGB_SECONDS} out tps
    : >"$WORK/$name.xacts"
    if ! out=$(pgbench -n -M prepared -c 2 -j 2 -T "$seconds" -f "$WORK/$name.pgb" 2>&1); then
        echo "   ERROR in pgbench $name: $(grep -m 1 -E 'ERROR|FATAL|error' <<<"$out")" >&2
        echo nan
        return
    fi
    sed -n 's/^number of transactions actually processed: \([0-9]*\).*$/\1/p' <<<"$out" >"$WORK/$name.xacts"
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' <<<"$out")
    if grep -q -E 'number of failed transactions: [1-9]' <<<"$out" || [[ -z $tps ]]; then
        echo "   ERROR in pgbench $name: failed transactions or no TPS in its output" >&2
        echo nan
        return
    fi
    echo "$tps"
}
# median TPS of a script in a file of "<script> <tps>" lines (default: part
# 4's $WORK/pgbench.out); nan when one of its runs failed
tps_median() { # script [file]
    local f=${2:-$WORK/pgbench.out}
    if awk -v s="$1" '$1 == s && $2 == "nan" { f = 1 } END { exit !f }' "$f"; then
        echo nan
    else
        awk -v s="$1" '$1 == s { print $2 }' "$f" | median
    fi
}
tps_all() { # script [file]
    awk -v n="$1" '$1 == n { printf "%s%s", s, ($2 == "nan" ? "error" : sprintf("%.0f", $2)); s = " " }' "${2:-$WORK/pgbench.out}"
}

# ---------------------------------------------------------------- verdicts
MISSED=0
# set to 1 by a part whose untimed check fails: the run then exits with
# status 1 whatever BENCH_STRICT says
LOAD_BAD=0 MON_BAD=0
verdict() { # value op limit
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        if (v == "nan" || v == "") { print "ERROR"; exit }
        ok = (op == "<=") ? (v + 0 <= l + 0) : (v + 0 >= l + 0)
        print ok ? "PASS" : "FAIL" }'
}
# a measured figure: "error" when it could not be measured
fig() { # value unit [ratio]
    if [[ $1 == nan || -z $1 ]]; then
        echo error
    elif [[ -n ${3:-} ]]; then
        echo "$1 $2 = ${3}x"
    else
        echo "$1 $2"
    fi
}
tps_fig() { [[ $1 == nan ]] && echo nan || printf '%.0f' "$1"; }
# two timings of one row, "a / b ms", or error
scan_pair() { [[ $1 == nan || $2 == nan || -z $1 || -z $2 ]] && echo error || echo "$1 / $2 ms"; }
# the wall time of the run so far: "N min (S s)", N with one decimal
took() { awk -v s="$(($(date +%s) - T_START))" 'BEGIN { printf "%.1f min (%d s)\n", s / 60, s }'; }
row() { printf '%-44s %-24s %-12s %s\n' "$1" "$2" "$3" "$4"; }
check() { # figure measured ratio op limit
    local v
    v=$(verdict "$3" "$4" "$5")
    [[ $v == PASS ]] || MISSED=1
    row "$1" "$2" "$4 $5" "$v"
}

# ---------------------------------------------------------------- 14. load
# A CSV file of ROWS rows (a bigint id and c1..c20, with a header) written
# by the server with COPY (SELECT ...) TO into a directory of WORK that the
# server's OS user owns, and served on loopback by the fixture server;
# COPY FROM the file, ml.load into a table made beforehand and ml.load
# creating its table, alternating.  Each run loads into a fresh table and
# follows a CHECKPOINT, both outside the clock, so that no contender pays
# for the dirty pages of another.  The part needs neither t nor a model: it
# runs first, and alone with BENCH_ONLY=14.
if part_runs 14; then
    LOAD_REPS=${BENCH_LOAD_REPS:-3}
    [[ $LOAD_REPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_LOAD_REPS must be a positive integer, not '$LOAD_REPS'"
    LOAD_DIR=$WORK/load
    LOAD_CSV=$LOAD_DIR/load.csv
    LOAD_PORT_FILE=$WORK/load.port
    LOAD_OK=1 LOAD_BAD=0 LOAD_CURL_MS=nan
    load_defs="id bigint" load_gen="i AS id"
    for ((k = 1; k <= NFEAT; k++)); do
        load_defs+=", c$k float8"
        load_gen+=", random() AS c$k"
    done
    say "load: $ROWS rows x $((NFEAT + 1)) columns of CSV, COPY FROM the file versus ml.load over loopback HTTP," \
        "$LOAD_REPS alternating runs each"
    mkdir "$LOAD_DIR"
    # as root, the cluster runs as postgres, which writes the file
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres: "$LOAD_DIR"
    fi
    psql_run <<SQL
SELECT setseed(0.44) \g /dev/null
COPY (SELECT $load_gen FROM generate_series(1, $ROWS) i) TO '$LOAD_CSV' WITH (FORMAT csv, HEADER);
SQL
    LOAD_BYTES=$(stat -c %s "$LOAD_CSV")
    python3 "$ROOT/test/fixtures/http_fixture.py" --data-dir "$LOAD_DIR" --port-file "$LOAD_PORT_FILE" \
        >/dev/null 2>"$WORK/fixture.err" &
    FIXTURE_PID=$!
    for ((i = 0; i < 100; i++)); do
        [[ -s $LOAD_PORT_FILE ]] && break
        kill -0 "$FIXTURE_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [[ ! -s $LOAD_PORT_FILE ]]; then
        echo "   ERROR: the fixture server did not start: $(tail -n 1 "$WORK/fixture.err")"
        LOAD_OK=0
    fi
    : >"$WORK/load.out"
    if [[ $LOAD_OK == 1 ]]; then
        LOAD_URL="http://127.0.0.1:$(cat "$LOAD_PORT_FILE")/data/load.csv"
        echo "   file: $(awk -v b="$LOAD_BYTES" 'BEGIN { printf "%.1f MB", b / 1e6 }'), served at $LOAD_URL"
        {
            for ((i = 1; i <= LOAD_REPS; i++)); do
                echo "DROP TABLE IF EXISTS load_copy; CREATE TABLE load_copy ($load_defs); CHECKPOINT;"
                timed load_copy "COPY load_copy FROM '$LOAD_CSV' WITH (FORMAT csv, HEADER)"
                echo "DROP TABLE IF EXISTS load_append; CREATE TABLE load_append ($load_defs); CHECKPOINT;"
                timed load_append "SELECT ml.load('$LOAD_URL', 'load_append', 'csv', '{\"mode\": \"append\"}')"
                echo "DROP TABLE IF EXISTS load_create; CHECKPOINT;"
                timed load_create "SELECT ml.load('$LOAD_URL', 'load_create', 'csv', '{\"mode\": \"create\"}')"
            done
            # once, untimed: rows and sum(c1) of each table, summed in the same
            # order (no parallel workers), and the types ml.load inferred
            echo "SET max_parallel_workers_per_gather = 0;"
            for tb in load_copy load_append load_create; do
                echo "SELECT 'LCHECK $tb ' || count(*) || ' ' || coalesce(sum(c1)::text, 'null') FROM $tb;"
            done
            echo "SELECT 'LTYPES ' || string_agg(n || ' ' || ty, ', ' ORDER BY o) FROM (SELECT format_type(atttypid, atttypmod) AS ty," \
                "count(*) AS n, min(attnum) AS o FROM pg_attribute WHERE attrelid = 'load_create'::regclass AND attnum > 0" \
                "AND NOT attisdropped GROUP BY 1) s;"
        } >"$WORK/load.sql"
        psql_section load "$WORK/load.sql"
        if command -v curl >/dev/null 2>&1; then
            LOAD_CURL_MS=$(curl -sS -o /dev/null -w '%{time_total}' "$LOAD_URL" 2>/dev/null |
                awk '{ printf "%.3f\n", $1 * 1000 }') || LOAD_CURL_MS=nan
        fi
    fi
    kill "$FIXTURE_PID" 2>/dev/null || true
    wait "$FIXTURE_PID" 2>/dev/null || true
    FIXTURE_PID=""
    LOAD_COPY_MS=$(timing_median "$WORK/load.out" load_copy)
    LOAD_APPEND_MS=$(timing_median "$WORK/load.out" load_append)
    LOAD_CREATE_MS=$(timing_median "$WORK/load.out" load_create)
    # PASS, or FAIL and what differs: every table has ROWS rows, and the two
    # ml.load tables the sum(c1) of the COPY one
    LOAD_CHECK=$(awk -v n="$ROWS" '$1 == "LCHECK" { c[$2] = $3; s[$2] = $4 } END {
        split("load_copy load_append load_create", ts, " ")
        for (i = 1; i <= 3; i++) {
            t = ts[i]
            if (!(t in c)) { why = why "; " t " could not be read"; continue }
            if (c[t] != n) why = why "; " t " has " c[t] " rows, not " n
            if (i > 1 && s[t] != s["load_copy"]) why = why "; sum(c1) of " t " is " s[t] ", of load_copy " s["load_copy"]
        }
        print (why == "" ? "PASS" : "FAIL" why) }' "$WORK/load.out")
    echo "   COPY FROM the file                   runs (ms): $(timing_all "$WORK/load.out" load_copy)"
    echo "   ml.load into a table made beforehand runs (ms): $(timing_all "$WORK/load.out" load_append)"
    echo "   ml.load creating its table           runs (ms): $(timing_all "$WORK/load.out" load_create)"
    echo "   medians, MB of CSV a second: COPY $(awk -v b="$LOAD_BYTES" -v ms="$LOAD_COPY_MS" 'BEGIN { print (ms == "nan" ? "?" : sprintf("%.1f", b / 1e3 / ms)) }')," \
        "ml.load append $(awk -v b="$LOAD_BYTES" -v ms="$LOAD_APPEND_MS" 'BEGIN { print (ms == "nan" ? "?" : sprintf("%.1f", b / 1e3 / ms)) }')," \
        "ml.load create $(awk -v b="$LOAD_BYTES" -v ms="$LOAD_CREATE_MS" 'BEGIN { print (ms == "nan" ? "?" : sprintf("%.1f", b / 1e3 / ms)) }');" \
        "the fixture alone (curl to /dev/null, 1 run): $LOAD_CURL_MS ms"
    echo "   columns ml.load created: $(awk '$1 == "LTYPES" { $1 = ""; print substr($0, 2) }' "$WORK/load.out")"
    echo "   rows and sum(c1): $(awk '$1 == "LCHECK" { printf "%s%s %s %s", s, $2, $3, $4; s = ", " }' "$WORK/load.out")"
    if [[ $LOAD_CHECK != PASS ]]; then
        LOAD_BAD=1
        LOAD_APPEND_MS=nan LOAD_CREATE_MS=nan
        echo "   ERROR in load: ml.load did not load what COPY did: ${LOAD_CHECK#FAIL; }"
    fi
    psql_run -c "DROP TABLE IF EXISTS load_copy, load_append, load_create"
    rm -f "$LOAD_CSV"
    LOAD_APPEND_RATIO=$(ratio "$LOAD_COPY_MS" "$LOAD_APPEND_MS")
    LOAD_CREATE_RATIO=$(ratio "$LOAD_COPY_MS" "$LOAD_CREATE_MS")
fi

summary_head() {
row "figure" "measured" "target" "result"
row "--------------------------------------------" "------------------------" "------------" "------"
}
summary_14() {
row "14. COPY FROM a CSV file, $ROWS rows" "$(fig "$LOAD_COPY_MS" ms)" "-" "-"
check "    ml.load over HTTP, append: COPY / it" "$(fig "$LOAD_APPEND_MS" ms "$LOAD_APPEND_RATIO")" "$LOAD_APPEND_RATIO" ">=" 0.50
check "    ml.load, table created: COPY / it" "$(fig "$LOAD_CREATE_MS" ms "$LOAD_CREATE_RATIO")" "$LOAD_CREATE_RATIO" ">=" 0.50
[[ $LOAD_CHECK == PASS ]] || MISSED=1
row "    rows and sum(c1) as COPY's" "$([[ $LOAD_CHECK == PASS ]] && echo equal || echo differ)" "equal" \
    "$([[ $LOAD_CHECK == PASS ]] && echo PASS || echo FAIL)"
row "    fixture alone, curl to /dev/null (info)" "$(fig "$LOAD_CURL_MS" ms)" "(info)" "-"
}

# ---------------------------------------------------------------- 17. bandits
if part_runs 17; then
    say "bandits: pgbench -M prepared -c 2 -j 2 -T $PGB_SECONDS, ml.choose + ml.reward a transaction," \
        "LinUCB (5 arms, 5 context values) and Beta-Bernoulli Thompson (5 arms), $PGB_ROUNDS alternating runs each"
    psql_run -c "SELECT ml.create_bandit('bench_linucb', ARRAY['a', 'b', 'c', 'd', 'e'], 'linucb', '{\"dim\": 5, \"seed\": 1}')" \
        -c "SELECT ml.create_bandit('bench_beta', ARRAY['a', 'b', 'c', 'd', 'e'], 'thompson', '{\"seed\": 1}')" >/dev/null
    cat >"$WORK/bandit_linucb.pgb" <<'PGB'
\set u random(0, 1000)
\set v random(0, 1000)
SELECT decision_id FROM ml.choose('bench_linucb', ARRAY[:u::float8 / 1000, :v::float8 / 1000, 0.5, 0.25, 1.0]) \gset
SELECT ml.reward('bench_linucb', :decision_id, (:u::float8 + :v::float8) / 2000);
PGB
    cat >"$WORK/bandit_beta.pgb" <<'PGB'
\set u random(0, 1)
SELECT decision_id FROM ml.choose('bench_beta') \gset
SELECT ml.reward('bench_beta', :decision_id, :u);
PGB
    BANDIT_OUT=$WORK/bandit.out
    : >"$BANDIT_OUT"
    for ((r = 1; r <= PGB_ROUNDS; r++)); do
        for b in linucb beta; do
            echo "$b $(pgbench_tps "bandit_$b")" >>"$BANDIT_OUT"
        done
    done
    BANDIT_LINUCB_TPS=$(tps_median linucb "$BANDIT_OUT")
    BANDIT_BETA_TPS=$(tps_median beta "$BANDIT_OUT")
    echo "   decisions a second: LinUCB $(tps_all linucb "$BANDIT_OUT"), Beta-Bernoulli $(tps_all beta "$BANDIT_OUT")"
    echo "   rewards counted: $(psql_run -c "SELECT string_agg(b.name || ' ' || s.pulls, ', ' ORDER BY b.name) FROM ml.bandits b,
        LATERAL (SELECT sum(pulls) AS pulls FROM ml.bandit_arms a WHERE a.bandit_id = b.id) s")"
    psql_run -c "SELECT ml.drop_bandit('bench_linucb')" -c "SELECT ml.drop_bandit('bench_beta')" >/dev/null
fi

summary_17() {
check "17. bandit decisions/s, LinUCB, 2 clients" "$(awk -v t="$BANDIT_LINUCB_TPS" 'BEGIN { print (t == "nan" ? "error" : sprintf("%.0f/s", t)) }')" \
    "$BANDIT_LINUCB_TPS" ">=" 2000
row "    Beta-Bernoulli Thompson (info)" "$(awk -v t="$BANDIT_BETA_TPS" 'BEGIN { print (t == "nan" ? "error" : sprintf("%.0f/s", t)) }')" "(info)" "-"
}

# Ends a BENCH_ONLY run: the summary of its parts (summary_N of each part N
# it names), and the exit status; test/bench/results.md is left as it is.
finish_only() {
    local p what="part $ONLY"
    [[ $ONLY != *" "* ]] || what="parts ${ONLY// /, }"
    echo
    say "summary of $what ($ROWS rows; medians; $(($(date +%s) - T_START)) s in all;" \
        "PostgreSQL $PG_VERSION_STR, shared_buffers $SHARED_BUFFERS, jit $JIT, $(nproc) CPUs, commit $COMMIT)"
    {
        summary_head
        for p in $ONLY; do
            "summary_$p"
        done
        echo
        echo "BENCH_ONLY=$BENCH_ONLY took $(took)"
    } >"$WORK/summary.txt"
    cat "$WORK/summary.txt"
    echo "== BENCH_ONLY=$BENCH_ONLY: test/bench/results.md (a full run's) left as it is"
    [[ $LOAD_BAD == 0 && $MON_BAD == 0 ]] || exit 1
    [[ $MISSED -ne 0 && $STRICT == 1 ]] && exit 1
    exit 0
}

# a BENCH_ONLY run of parts that need no table t ends here
if [[ -n $ONLY ]] && ! part_runs 15 && ! part_runs 16 && ! part_runs 18; then
    finish_only
fi

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
echo "   table t: $(awk -v b="$TABLE_BYTES" 'BEGIN { printf "%.1f MB", b / 1e6 }')," \
    "PostgreSQL $PG_VERSION_STR, shared_buffers $SHARED_BUFFERS, jit $JIT, $(nproc) CPUs, commit $COMMIT"

SCAN_SQL="SELECT sum($sumexpr) FROM t"
TRAIN_SQL="SELECT * FROM ml.train('bench', 't', 'y', 'linear', deploy => 'always')"
PREDICT_SQL="SELECT sum(ml.predict('bench', t)) FROM t"
ROW_SQL="SELECT count(t) FROM t"

# ---------------------------------------------------------------- 15. monitor
# ml.monitor of the 20 features of t against one query of their 20 sums,
# alternating, after one untimed run of each.  The project bench_mon is
# trained once before, untimed, on all of t: its live model's baseline is
# what the monitor compares with.  Neither forces
# max_parallel_workers_per_gather: both run with the server's default, and
# the workers their plans have are reported (the monitor's scan, an SPI
# query inside it, through auto_explain's nested statements, in one more
# untimed run).  Once, untimed: the monitor over the training query reads
# ROWS rows and flags nothing.  The part needs t but no other part: it runs
# right after t is made, and alone with BENCH_ONLY=15.
if part_runs 15; then
    MON_REPS=${BENCH_MONITOR_REPS:-3}
    [[ $MON_REPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_MONITOR_REPS must be a positive integer, not '$MON_REPS'"
    mon_sums=""
    for ((k = 1; k <= NFEAT; k++)); do
        mon_sums+="${mon_sums:+, }sum(c$k)"
    done
    MON_TRAIN_SOURCE="SELECT $cols, y FROM t"
    MON_SCAN_SQL="SELECT $mon_sums FROM t"
    MON_SQL="SELECT count(*) FROM ml.monitor('bench_mon', 'SELECT $cols FROM t')"
    MON_GATHER=$(psql_run -c "SHOW max_parallel_workers_per_gather")
    say "monitor: ml.monitor of the $NFEAT features of t versus their sums in one query, $MON_REPS alternating runs each," \
        "max_parallel_workers_per_gather = $MON_GATHER (the server's default) for both"
    {
        echo "SELECT 'MTRAIN ' || model_id || ' ' || deployed FROM ml.train('bench_mon', '$MON_TRAIN_SOURCE', 'y', 'linear'," \
            "deploy => 'always');"
        echo "SELECT 'MBASE ' || count(*) FROM ml.baseline('bench_mon');"
        echo "$MON_SCAN_SQL \\g /dev/null"
        echo "$MON_SQL \\g /dev/null"
        for ((i = 1; i <= MON_REPS; i++)); do
            timed mon_scan "$MON_SCAN_SQL"
            timed mon_monitor "$MON_SQL"
        done
        echo "EXPLAIN (COSTS OFF) $MON_SCAN_SQL;"
        # once, untimed: the monitor over the training rows; rows read,
        # checks, violated checks and which
        echo "SELECT 'MCHECK ' || coalesce(max(value) FILTER (WHERE \"check\" = 'rows')::bigint, -1) || ' ' || count(*) || ' '" \
            "|| count(*) FILTER (WHERE violated) || ' ' || coalesce(string_agg(feature || ' ' || \"check\", ', ')" \
            "FILTER (WHERE violated), '-') FROM ml.monitor('bench_mon', '$MON_TRAIN_SOURCE');"
    } >"$WORK/monitor.sql"
    psql_section monitor "$WORK/monitor.sql"
    # the plan of the monitor's scan, logged by auto_explain to the client
    MON_PLAN=$(psql -X -q -At -c "LOAD 'auto_explain'" -c "SET auto_explain.log_min_duration = 0" \
        -c "SET auto_explain.log_nested_statements = on" -c "SET client_min_messages = log" \
        -c "$MON_SQL" 2>&1 >/dev/null) || true
    MON_WORKERS=$(awk '/^LOG:/ && scan { exit } /Query Text: SELECT ml\._monitor_counts\(/ { scan = 1 }
        scan && /Workers Planned:/ { w = $NF } END { print (scan ? (w == "" ? 0 : w) : "?") }' <<<"$MON_PLAN")
    MON_SCAN_WORKERS=$(sed -n 's/^ *Workers Planned: \([0-9]*\)$/\1/p' "$WORK/monitor.out" | head -n 1)
    MON_SCAN_WORKERS=${MON_SCAN_WORKERS:-0}
    MON_SCAN_MS=$(timing_median "$WORK/monitor.out" mon_scan)
    MON_MS=$(timing_median "$WORK/monitor.out" mon_monitor)
    read -r MON_ROWS MON_NCHECKS MON_NVIOL MON_VIOLATED <<<"$(awk '$1 == "MCHECK" { $1 = ""; print substr($0, 2) }' "$WORK/monitor.out")"
    [[ $MON_VIOLATED != - ]] || MON_VIOLATED=""
    if [[ -z $MON_ROWS ]]; then
        MON_CHECK="FAIL; the monitor over the training rows failed"
    elif [[ $MON_ROWS != "$ROWS" ]]; then
        MON_CHECK="FAIL; the monitor over the training rows read $MON_ROWS rows, not $ROWS"
        MON_MS=nan
    elif [[ $MON_NVIOL != 0 ]]; then
        MON_CHECK="FAIL; the monitor flags $MON_NVIOL of its $MON_NCHECKS checks over the training rows: $MON_VIOLATED"
    else
        MON_CHECK=PASS
    fi
    echo "   bench_mon: $(awk '$1 == "MTRAIN" { print "model " $2 ", deployed " $3 }' "$WORK/monitor.out"), baseline of" \
        "$(awk '$1 == "MBASE" { print $2 }' "$WORK/monitor.out") columns"
    echo "   sums       runs (ms): $(timing_all "$WORK/monitor.out" mon_scan)"
    echo "   ml.monitor runs (ms): $(timing_all "$WORK/monitor.out" mon_monitor)"
    echo "   workers planned: sums $MON_SCAN_WORKERS, the monitor's scan $MON_WORKERS"
    echo "   the monitor over the training rows: ${MON_ROWS:-?} rows read, ${MON_NCHECKS:-?} checks," \
        "${MON_NVIOL:-?} violated${MON_VIOLATED:+ ($MON_VIOLATED)}"
    if [[ $MON_CHECK != PASS ]]; then
        MON_BAD=1
        echo "   ERROR in monitor: ${MON_CHECK#FAIL; }"
    fi
    MON_RATIO=$(ratio "$MON_MS" "$MON_SCAN_MS")
fi

summary_15() {
row "15. sum(c1)..sum(c20), workers per gather $MON_GATHER" "$(fig "$MON_SCAN_MS" ms)" "-" "-"
check "    ml.monitor / sums, workers per gather $MON_GATHER" "$(fig "$MON_MS" ms "$MON_RATIO")" "$MON_RATIO" "<=" 3.0
row "    workers planned, sums / monitor (info)" "$MON_SCAN_WORKERS / $MON_WORKERS" "(info)" "-"
[[ $MON_CHECK == PASS ]] || MISSED=1
row "    violations over the training rows" "${MON_NVIOL:-?} of ${MON_NCHECKS:-?} checks" "none" \
    "$([[ $MON_CHECK == PASS ]] && echo PASS || echo FAIL)"
}

# ---------------------------------------------------------------- 16. capture
# pgbench predicting one row of tcap (the first rows of t with a bigint
# primary key id) by a random id, with the capture rate of the project
# bench_cap at 0 and at 1, alternating (ml.set_capture before each run; each
# run's connections read the rate afresh).  bench_cap is trained once on
# tcap, untimed.  ml._capture_counters() is read before and after each run:
# its deltas over the rate-1 runs are the captures taken and dropped; the
# launcher's CPU time during those runs, read from /proc, shows how much of
# the machine storing them took.  After a rate-1 run, outside the clock, the part waits
# until the launcher has stored every capture taken (the ring empty and
# ml.captured grown by as many rows), then vacuums ml.captured and
# checkpoints, so that the next run does not share the machine with the
# launcher, autovacuum or the checkpointer on account of this one.  The part
# needs t but no other part: it runs after part 15, and alone with
# BENCH_ONLY=16.
if part_runs 16; then
    CAP_SECONDS=${BENCH_CAPTURE_SECONDS:-10}
    CAP_ROUNDS=${BENCH_CAPTURE_ROUNDS:-3}
    [[ $CAP_SECONDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_CAPTURE_SECONDS must be a positive integer, not '$CAP_SECONDS'"
    [[ $CAP_ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_CAPTURE_ROUNDS must be a positive integer, not '$CAP_ROUNDS'"
    CAP_ROWS=$((ROWS < 100000 ? ROWS : 100000))
    CAP_OUT=$WORK/capture.out
    CAP_OK=1
    say "prediction capture: pgbench -M prepared -c 2 -j 2 -T $CAP_SECONDS, ml.predict of one row of $CAP_ROWS by its id," \
        "capture rate 0 and 1, $CAP_ROUNDS alternating runs each"
    psql_run <<SQL
CREATE TABLE tcap AS SELECT row_number() OVER () AS id, * FROM (SELECT $cols, y FROM t LIMIT $CAP_ROWS) s;
ALTER TABLE tcap ADD PRIMARY KEY (id);
VACUUM (ANALYZE) tcap;
SQL
    {
        echo "SELECT 'CTRAIN ' || model_id || ' ' || deployed FROM ml.train('bench_cap', 'SELECT $cols, y FROM tcap', 'y', 'linear'," \
            "deploy => 'always');"
        # whether captures can be taken here: the ring exists (pgmaker
        # preloaded) and this is ml.database, whose launcher stores them
        echo "SELECT 'CSETUP ' || coalesce(available, false) || ' ' || (current_database() = current_setting('ml.database'))" \
            "|| ' ' || current_setting('ml.database') || ' ' || current_setting('ml.capture_buffer') FROM ml._capture_counters();"
        echo "SELECT ml.set_capture('bench_cap', 0);"
    } >"$WORK/capture_setup.sql"
    psql_section capture_setup "$WORK/capture_setup.sql"
    read -r CAP_AVAILABLE CAP_SAMEDB CAP_MLDB CAP_BUFFER <<<"$(awk '$1 == "CSETUP" { $1 = ""; print substr($0, 2) }' "$WORK/capture_setup.out")"
    echo "   bench_cap: $(awk '$1 == "CTRAIN" { print "model " $2 ", deployed " $3 }' "$WORK/capture_setup.out")," \
        "trained on $CAP_ROWS rows; ml.capture_buffer ${CAP_BUFFER:-?}, ml.database ${CAP_MLDB:-?}"
    if ! grep -q '^CTRAIN [0-9]* true$' "$WORK/capture_setup.out"; then
        echo "   ERROR in capture: bench_cap has no deployed model"
        CAP_OK=0
    elif [[ $CAP_AVAILABLE != true ]]; then
        echo "   ERROR in capture: no capture ring: the server does not preload pgmaker (shared_preload_libraries)"
        CAP_OK=0
    elif [[ $CAP_SAMEDB != true ]]; then
        echo "   ERROR in capture: the bench's database $PGDATABASE is not ml.database ($CAP_MLDB)"
        CAP_OK=0
    fi
    # the launcher, which stores the captures: it starts with the server,
    # before cluster.sh creates the database, exits for want of it and is
    # started again bgw_restart_time (10 s) later; wait for it (up to 60 s)
    CAP_LAUNCHER=""
    for ((i = 0; CAP_OK == 1 && i < 300; i++)); do
        CAP_LAUNCHER=$(psql_run -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pgmaker launcher' LIMIT 1" \
            2>/dev/null) || CAP_LAUNCHER=""
        [[ -n $CAP_LAUNCHER ]] && break
        sleep 0.2
    done
    if [[ $CAP_OK == 1 && -z $CAP_LAUNCHER ]]; then
        echo "   ERROR in capture: pgmaker's launcher is not running"
        CAP_OK=0
    fi
    {
        echo "\\set id random(1, $CAP_ROWS)"
        echo "SELECT ml.predict('bench_cap', tcap) FROM tcap WHERE id = :id;"
    } >"$WORK/capture.pgb"
    # "<captured> <dropped>" of the ring since the server started
    cap_counters() {
        psql_run -c "SELECT captured || ' ' || dropped FROM ml._capture_counters()" 2>>"$WORK/capture.err" || true
    }
    cap_rows() { psql_run -c "SELECT coalesce(sum(n), 0) FROM ml.capture_batches" 2>>"$WORK/capture.err" || echo -1; }
    # Waits (up to 120 s) until the ring is empty and ml.captured holds at
    # least $1 rows; prints the rows it holds.
    cap_drain() {
        local i n=-1
        for ((i = 0; i < 600; i++)); do
            n=$(psql_run -c "SELECT CASE WHEN buffered_bytes = 0 THEN (SELECT coalesce(sum(n), 0) FROM ml.capture_batches) ELSE -1 END
                FROM ml._capture_counters()" 2>>"$WORK/capture.err") || n=-1
            [[ $n -ge $1 ]] && break
            sleep 0.2
        done
        echo "$n"
    }
    # utime + stime of a process (s); nan when it cannot be read
    proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo nan; }
    : >"$CAP_OUT"
    : >"$WORK/capture.runs"
    CAP_N0=$(cap_rows)
    read -r CAP_K0 _ <<<"$(cap_counters)"
    for ((i = 1; CAP_OK == 1 && i <= CAP_ROUNDS; i++)); do
        for rate in 0 1; do
            if ! psql_run -c "SELECT ml.set_capture('bench_cap', $rate)" >/dev/null 2>"$WORK/capture.err"; then
                echo "   ERROR in capture: $(grep -m 1 -E 'ERROR|FATAL' "$WORK/capture.err")"
                CAP_OK=0
                break
            fi
            read -r k0 d0 <<<"$(cap_counters)"
            c0=$(proc_cpu "$CAP_LAUNCHER")
            echo "rate$rate $(pgbench_tps capture "$CAP_SECONDS")" >>"$CAP_OUT"
            c1=$(proc_cpu "$CAP_LAUNCHER")
            read -r k1 d1 <<<"$(cap_counters)"
            calls=$(cat "$WORK/capture.xacts")
            stored=-
            if [[ $rate == 1 && -n $k1 ]]; then
                stored=$(cap_drain $((CAP_N0 + k1 - CAP_K0)))
                # the upkeep the new rows call for, done now rather than by
                # autovacuum and the checkpointer during the next run
                psql_run -c "VACUUM (ANALYZE) ml.capture_batches" -c "CHECKPOINT" 2>>"$WORK/capture.err" || true
            fi
            # rate, predictions, captures taken, dropped, rows ml.captured
            # holds after the run, the launcher's CPU seconds during the run
            cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN { print (a == "nan" || b == "nan") ? "nan" : sprintf("%.2f", b - a) }')
            if [[ -n $k0 && -n $k1 && -n $d0 && -n $d1 ]]; then
                echo "$rate ${calls:-nan} $((k1 - k0)) $((d1 - d0)) $stored $cpu" >>"$WORK/capture.runs"
            else
                echo "$rate ${calls:-nan} nan nan $stored $cpu" >>"$WORK/capture.runs"
            fi
        done
    done
    # the rate back to 0, whatever happened
    psql_run -c "SELECT ml.set_capture('bench_cap', 0)" >/dev/null 2>>"$WORK/capture.err" ||
        echo "   ERROR in capture: the rate could not be set back to 0: $(grep -m 1 -E 'ERROR|FATAL' "$WORK/capture.err")"
    CAP_N1=$(cap_rows)
    CAP_TPS0=$(tps_median rate0 "$CAP_OUT")
    CAP_TPS1=$(tps_median rate1 "$CAP_OUT")
    # sums over the runs of a rate: predictions, taken, dropped; nan when a
    # figure is missing
    cap_sum() { # rate column
        awk -v r="$1" -v c="$2" '$1 == r { if ($c == "nan" || $c == "") bad = 1; s += $c; n++ }
            END { print (bad || n == 0) ? "nan" : s }' "$WORK/capture.runs"
    }
    CAP_CALLS=$(cap_sum 1 2) CAP_TAKEN=$(cap_sum 1 3) CAP_DROPPED=$(cap_sum 1 4) CAP_TAKEN0=$(cap_sum 0 3)
    # the launcher's share of a CPU during the rate-1 runs
    CAP_LCPU=$(awk -v t="$CAP_SECONDS" '$1 == 1 { if ($6 == "nan") bad = 1; s += $6; n++ }
        END { print (bad || n == 0) ? "nan" : sprintf("%.2f", s / (n * t)) }' "$WORK/capture.runs")
    CAP_STORED=nan
    [[ $CAP_N0 -ge 0 && $CAP_N1 -ge 0 ]] && CAP_STORED=$((CAP_N1 - CAP_N0))
    if [[ $CAP_OK != 1 ]]; then
        CAP_TPS0=nan CAP_TPS1=nan CAP_CALLS=nan CAP_TAKEN=nan CAP_DROPPED=nan CAP_STORED=nan CAP_LCPU=nan
    fi
    echo "   rate 0 TPS: $(tps_all rate0 "$CAP_OUT")"
    echo "   rate 1 TPS: $(tps_all rate1 "$CAP_OUT")"
    echo "   per run at rate 1, predictions / captures taken / dropped / launcher CPU s:" \
        "$(awk '$1 == 1 { printf "%s%s/%s/%s/%s", s, $2, $3, $4, $6; s = ", " }' "$WORK/capture.runs")"
    echo "   over the rate-1 runs: $CAP_CALLS predictions, $CAP_TAKEN captures taken, $CAP_DROPPED dropped;" \
        "ml.captured gained $CAP_STORED rows; captures taken at rate 0: $CAP_TAKEN0"
    if [[ $CAP_OK == 1 && $CAP_STORED != "$CAP_TAKEN" ]]; then
        echo "   note: ml.captured gained $CAP_STORED rows for $CAP_TAKEN captures taken"
    fi
    # nothing of this part is left for the next ones to trip over: the
    # captured rows, tcap, their dirty pages
    psql_run -c "TRUNCATE ml.capture_batches" -c "DROP TABLE tcap" -c "CHECKPOINT"
    CAP_RATIO=$(ratio "$CAP_TPS1" "$CAP_TPS0")
fi

summary_16() {
row "16. pgbench ml.predict(row by id), capture 0" "$(fig "$(tps_fig "$CAP_TPS0")" tps)" "-" "-"
check "    capture rate 1 / rate 0" "$(fig "$(tps_fig "$CAP_TPS1")" tps "$CAP_RATIO")" "$CAP_RATIO" ">=" 0.80
row "    rate 1: predictions (info)" "$([[ $CAP_CALLS == nan ]] && echo error || echo "$CAP_CALLS")" "(info)" "-"
row "    rate 1: captures taken / dropped (info)" "$([[ $CAP_TAKEN == nan ]] && echo error || echo "$CAP_TAKEN / $CAP_DROPPED")" "(info)" "-"
row "    rate 1: rows ml.captured gained (info)" "$([[ $CAP_STORED == nan ]] && echo error || echo "$CAP_STORED")" "(info)" "-"
row "    rate 1: launcher CPU s / s of run (info)" "$([[ $CAP_LCPU == nan ]] && echo error || echo "$CAP_LCPU")" "(info)" "-"
}

# ---------------------------------------------------------------- 18. categorical
# tc: the first rows of t and three text columns of 10, 100 and 1000
# values, drawn after setseed in a session without parallel workers (so
# the same rows and values every run).  ml.train linear on tc (one-hot,
# pgmaker's default for text), the scan of tc reading every column, and
# ml.train linear on tc's numeric columns alone alternate; the hold-out R^2
# with and without the text columns, which are noise, should agree.  The
# part needs t but no other part: it runs after part 16, and alone with
# BENCH_ONLY=18.
if part_runs 18; then
    CAT_ROWS=$((ROWS < 1000000 ? ROWS : 1000000))
    CAT_SCAN_SQL="SELECT sum(${sumexpr}+length(k10)+length(k100)+length(k1000)) FROM tc"
    CAT_TRAIN_SQL="SELECT * FROM ml.train('bcat', 'tc', 'y', 'linear', deploy => 'never')"
    CAT_NUM_SQL="SELECT * FROM ml.train('bcat_num', 'SELECT $cols, y FROM tc', 'y', 'linear', deploy => 'never')"
    say "categorical columns: ml.train linear on tc ($CAT_ROWS rows of t + k10, k100, k1000 text) versus its scan" \
        "and versus the numeric columns alone, $TRAIN_REPS alternating runs each, no parallel workers"
    psql_run <<SQL
SET max_parallel_workers_per_gather = 0;
SELECT setseed(0.46) \g /dev/null
CREATE TABLE tc AS
SELECT $cols, 'a' || floor(random() * 10)::int AS k10, 'b' || floor(random() * 100)::int AS k100,
       'c' || floor(random() * 1000)::int AS k1000, y
  FROM (SELECT $cols, y FROM t LIMIT $CAT_ROWS) s;
VACUUM (ANALYZE) tc;
SQL
    {
        echo "SET max_parallel_workers_per_gather = 0;"
        echo "$CAT_SCAN_SQL \\g /dev/null"
        for ((i = 1; i <= TRAIN_REPS; i++)); do
            timed cat_scan "$CAT_SCAN_SQL"
            timed cat_train "$CAT_TRAIN_SQL"
            timed cat_num "$CAT_NUM_SQL"
        done
        # the last model of each project: hold-out R^2, features, rows
        for pr in bcat bcat_num; do
            echo "SELECT 'CMODEL $pr ' || coalesce(m.metrics->>'r2', 'nan') || ' ' || jsonb_array_length(m.features) || ' '" \
                "|| m.n_train || ' ' || m.n_test FROM ml.models m JOIN ml.projects p ON p.id = m.project_id" \
                "WHERE p.name = '$pr' ORDER BY m.id DESC LIMIT 1;"
        done
        echo "SELECT 'CDISTINCT ' || count(DISTINCT k10) || ' ' || count(DISTINCT k100) || ' ' || count(DISTINCT k1000) FROM tc;"
    } >"$WORK/cat.sql"
    psql_section cat "$WORK/cat.sql"
    CAT_SCAN_MS=$(timing_median "$WORK/cat.out" cat_scan)
    CAT_MS=$(timing_median "$WORK/cat.out" cat_train)
    CAT_NUM_MS=$(timing_median "$WORK/cat.out" cat_num)
    read -r CAT_R2 CAT_NFEAT CAT_NTRAIN CAT_NTEST <<<"$(awk '$1 == "CMODEL" && $2 == "bcat" { print $3, $4, $5, $6 }' "$WORK/cat.out")"
    read -r CAT_NUM_R2 CAT_NUM_NFEAT _ <<<"$(awk '$1 == "CMODEL" && $2 == "bcat_num" { print $3, $4 }' "$WORK/cat.out")"
    CAT_R2=${CAT_R2:-nan} CAT_NUM_R2=${CAT_NUM_R2:-nan}
    grep -q '^FAILED cat_train' "$WORK/cat.out" && CAT_R2=nan
    grep -q '^FAILED cat_num' "$WORK/cat.out" && CAT_NUM_R2=nan
    echo "   distinct values of k10, k100, k1000: $(awk '$1 == "CDISTINCT" { print $2 ", " $3 ", " $4 }' "$WORK/cat.out");" \
        "table tc: $(psql_run -c "SELECT round(pg_table_size('tc') / 1e6, 1)") MB"
    echo "   scan of tc        runs (ms): $(timing_all "$WORK/cat.out" cat_scan)"
    echo "   ml.train on tc    runs (ms): $(timing_all "$WORK/cat.out" cat_train)"
    echo "   numeric columns   runs (ms): $(timing_all "$WORK/cat.out" cat_num)"
    echo "   features: ${CAT_NFEAT:-?} with the text columns, ${CAT_NUM_NFEAT:-?} without; training / hold-out rows:" \
        "${CAT_NTRAIN:-?} / ${CAT_NTEST:-?}; hold-out R^2 $CAT_R2 with the text columns, $CAT_NUM_R2 without"
    psql_run -c "DROP TABLE tc"
    CAT_RATIO=$(ratio "$CAT_MS" "$CAT_SCAN_MS")
    CAT_NUM_RATIO=$(ratio "$CAT_NUM_MS" "$CAT_SCAN_MS")
    CAT_R2_DIFF=$(reldiff "$CAT_R2" "$CAT_NUM_R2")
fi

summary_18() {
row "18. scan of tc ($CAT_ROWS rows, 3 text cols)" "$(fig "$CAT_SCAN_MS" ms)" "-" "-"
row "    ml.train linear on tc / scan (info)" "$(fig "$CAT_MS" ms "$CAT_RATIO")" "(info)" "-"
row "    numeric columns alone / scan (info)" "$(fig "$CAT_NUM_MS" ms "$CAT_NUM_RATIO")" "(info)" "-"
row "    features, with / without text (info)" "${CAT_NFEAT:-?} / ${CAT_NUM_NFEAT:-?}" "(info)" "-"
check "    hold-out R^2, with / without text, % apart" "${CAT_R2_DIFF}% ($CAT_R2 / $CAT_NUM_R2)" "$CAT_R2_DIFF" "<=" 1
}

# a BENCH_ONLY run ends here
if [[ -n $ONLY ]]; then
    finish_only
fi

# ---------------------------------------------------------------- 2. train
# linear and ridge on t, logistic on the view tb of t (yb = y above its
# median; part 11 trains on it too), each against the scan of its source;
# scans and trainings alternate, first without parallel workers, then with
# the default max_parallel_workers_per_gather (information).
DEFAULT_WORKERS=$(psql_run -c "SELECT boot_val FROM pg_settings WHERE name = 'max_parallel_workers_per_gather'")
THRESHOLD=$(psql_run -c "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY y) FROM t")
psql_run -c "CREATE VIEW tb AS SELECT $cols, y > $THRESHOLD AS yb FROM t"
SCANB_SQL="SELECT sum(${sumexpr%y}yb::int) FROM tb"
RIDGE_TRAIN_SQL="SELECT * FROM ml.train('bridge', 't', 'y', 'ridge', deploy => 'always')"
LOG_TRAIN_SQL="SELECT * FROM ml.train('blog', 'tb', 'yb', 'logistic', deploy => 'always')"
say "ml.train linear, ridge (on t) and logistic (on the view tb) against the scan of t and of tb: $TRAIN_REPS alternating" \
    "runs each (after one warm-up scan of each), without parallel workers, then with $DEFAULT_WORKERS"
# the five contenders of one mode (suffix "" or "_p"), TRAIN_REPS times
train_runs() { # suffix
    for ((i = 1; i <= TRAIN_REPS; i++)); do
        timed "tscan$1" "$SCAN_SQL"
        timed "train$1" "$TRAIN_SQL"
        [[ -n $1 ]] || echo "SELECT 'FIT ' || round((fit_seconds * 1000)::numeric, 3) FROM ml.models ORDER BY id DESC LIMIT 1;"
        timed "ridge$1" "$RIDGE_TRAIN_SQL"
        timed "bscan$1" "$SCANB_SQL"
        timed "logistic$1" "$LOG_TRAIN_SQL"
    done
}
# the hold-out metrics of the last model of a project, on a line "TAG ..."
last_metrics() { # tag project
    echo "SELECT '$1 ' || m.metrics::text FROM ml.models m JOIN ml.projects p ON p.id = m.project_id" \
        "WHERE p.name = '$2' ORDER BY m.id DESC LIMIT 1;"
}
{
    echo "SET max_parallel_workers_per_gather = 0;"
    echo "$SCAN_SQL \\g /dev/null"
    echo "$SCANB_SQL \\g /dev/null"
    train_runs ""
    last_metrics METRICS bench
    last_metrics RMETRICS bridge
    last_metrics GMETRICS blog
    echo "SET max_parallel_workers_per_gather = $DEFAULT_WORKERS;"
    echo "$SCAN_SQL \\g /dev/null"
    echo "$SCANB_SQL \\g /dev/null"
    train_runs _p
    echo "EXPLAIN (COSTS OFF) $SCANB_SQL;"
} >"$WORK/train.sql"
psql_section train "$WORK/train.sql"
TRAIN_MS=$(timing_median "$WORK/train.out" train)
FIT_MS=$(awk '$1 == "FIT" { print $2 }' "$WORK/train.out" | median)
for c in tscan ridge bscan logistic tscan_p train_p ridge_p bscan_p logistic_p; do
    printf -v "T2_${c^^}_MS" '%s' "$(timing_median "$WORK/train.out" "$c")"
done
T2_BWORKERS=$(sed -n 's/^ *Workers Planned: \([0-9]*\)$/\1/p' "$WORK/train.out" | head -n 1)
T2_BWORKERS=${T2_BWORKERS:-0}
echo "   no workers: scan of t       runs (ms): $(timing_all "$WORK/train.out" tscan)"
echo "               ml.train linear runs (ms): $(timing_all "$WORK/train.out" train)"
echo "               ml.train ridge  runs (ms): $(timing_all "$WORK/train.out" ridge)"
echo "               scan of tb      runs (ms): $(timing_all "$WORK/train.out" bscan)"
echo "               logistic on tb  runs (ms): $(timing_all "$WORK/train.out" logistic)"
echo "   linear's fit_seconds (PipelineFit + solver, from ml.models), median: $FIT_MS ms;" \
    "the rest (reading the source, split, evaluation, catalog):" \
    "$(awk -v a="$TRAIN_MS" -v b="$FIT_MS" 'BEGIN { if (a == "nan" || b == "nan") print "?"; else printf "%.0f", a - b }') ms"
echo "   hold-out metrics: linear $(awk '$1 == "METRICS" { $1 = ""; print substr($0, 2) }' "$WORK/train.out")"
echo "                     ridge $(awk '$1 == "RMETRICS" { $1 = ""; print substr($0, 2) }' "$WORK/train.out")"
echo "                     logistic $(awk '$1 == "GMETRICS" { $1 = ""; print substr($0, 2) }' "$WORK/train.out")"
echo "   $DEFAULT_WORKERS workers per gather (the scan of tb plans $T2_BWORKERS):"
echo "               scan of t       runs (ms): $(timing_all "$WORK/train.out" tscan_p)"
echo "               ml.train linear runs (ms): $(timing_all "$WORK/train.out" train_p)"
echo "               ml.train ridge  runs (ms): $(timing_all "$WORK/train.out" ridge_p)"
echo "               scan of tb      runs (ms): $(timing_all "$WORK/train.out" bscan_p)"
echo "               logistic on tb  runs (ms): $(timing_all "$WORK/train.out" logistic_p)"

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
            timed "row_$mode" "$ROW_SQL"
        done
        echo "EXPLAIN (COSTS OFF) $PREDICT_SQL;"
    } >"$WORK/$mode.sql"
    psql_section "$mode" "$WORK/$mode.sql"
}

say "scan and predict without parallel workers: $REPS runs each"
scan_predict serial 0
SCAN_MS=$(timing_median "$WORK/serial.out" scan_serial)
PRED_MS=$(timing_median "$WORK/serial.out" predict_serial)
echo "   scan    runs (ms): $(timing_all "$WORK/serial.out" scan_serial)"
ROW_MS=$(timing_median "$WORK/serial.out" row_serial)
echo "   predict runs (ms): $(timing_all "$WORK/serial.out" predict_serial)"
echo "   count(t) runs (ms): $(timing_all "$WORK/serial.out" row_serial)"

say "scan and predict with max_parallel_workers_per_gather = $DEFAULT_WORKERS: $REPS runs each"
scan_predict parallel "$DEFAULT_WORKERS"
PSCAN_MS=$(timing_median "$WORK/parallel.out" scan_parallel)
PPRED_MS=$(timing_median "$WORK/parallel.out" predict_parallel)
PROW_MS=$(timing_median "$WORK/parallel.out" row_parallel)
PWORKERS=$(sed -n 's/^ *Workers Planned: \([0-9]*\)$/\1/p' "$WORK/parallel.out" | head -n 1)
PWORKERS=${PWORKERS:-0}
echo "   scan    runs (ms): $(timing_all "$WORK/parallel.out" scan_parallel)"
echo "   predict runs (ms): $(timing_all "$WORK/parallel.out" predict_parallel)"
echo "   count(t) runs (ms): $(timing_all "$WORK/parallel.out" row_parallel)"
echo "   predict plan: $PWORKERS parallel workers planned"

# ---------------------------------------------------------------- 5. memory
# One more training run in a fresh session, with /proc/<backend>/status read
# by test/bench/memprobe.sh right before and right after ml.train (through
# psql's \!, so in the same session), the peak RSS (VmHWM) reset just
# before, and a poller sampling the backend's anonymous RSS meanwhile.
say "memory of the training backend"
export BENCH_PROBE=$BENCH_DIR/memprobe.sh
# Writes to stdout a psql script that runs PRELUDE, then SQL between memory
# snapshots of its backend, with the poller's files in DIR.
mem_script() { # dir prelude sql
    cat <<SQL
SELECT count(*) FROM ml.models \g /dev/null
$2
SELECT pg_backend_pid() AS bench_pid \gset
\setenv BENCH_PID :bench_pid
\setenv BENCH_WORK $1
\! "\$BENCH_PROBE" snap "\$BENCH_PID" > "\$BENCH_WORK/mem.before"
\! "\$BENCH_PROBE" reset "\$BENCH_PID" > "\$BENCH_WORK/mem.reset"
\! "\$BENCH_PROBE" start "\$BENCH_PID" "\$BENCH_WORK"
$3 \g /dev/null
\if :ERROR
\echo FAILED train
\endif
\! "\$BENCH_PROBE" snap "\$BENCH_PID" > "\$BENCH_WORK/mem.after"
\! "\$BENCH_PROBE" stop "\$BENCH_WORK"
SQL
}
# The peak growth of the backend's private memory (MB) in a run of
# mem_script in DIR, or nan: VmHWM minus the file and shared-memory pages
# mapped at the end (both only grow while the backend runs) is a lower bound
# of the anonymous peak; the poller gives another (it samples); the larger
# one counts.  Prints "private raw poller hwm_anon".
mem_private() { # dir
    local d=$1
    if grep -q '^FAILED' "$d/mem.run.out" 2>/dev/null ||
        [[ ! -s $d/mem.before || ! -s $d/mem.after || ! -s $d/poll.out ]]; then
        echo "nan nan nan nan"
        return
    fi
    local B_RSS B_ANON B_FILE B_SHMEM A_RSS A_HWM A_ANON A_FILE A_SHMEM P_ANON P_RSS P_SAMPLES
    read -r B_RSS _ B_ANON B_FILE B_SHMEM <"$d/mem.before"
    read -r A_RSS A_HWM A_ANON A_FILE A_SHMEM <"$d/mem.after"
    read -r P_ANON P_RSS P_SAMPLES <"$d/poll.out"
    awk -v brss="$B_RSS" -v banon="$B_ANON" -v ahwm="$A_HWM" \
        -v afile="$A_FILE" -v ashm="$A_SHMEM" -v pan="$P_ANON" 'BEGIN {
        hwm_anon = ahwm - afile - ashm
        peak_anon = (pan > hwm_anon) ? pan : hwm_anon
        mb = 1024 / 1e6         # kB of /proc to MB (10^6 bytes)
        printf "%.1f %.1f %.1f %.1f\n", (peak_anon - banon) * mb, (ahwm - brss) * mb,
            (pan - banon) * mb, (hwm_anon - banon) * mb }'
}
mem_script "$WORK" "" "$TRAIN_SQL" >"$WORK/mem.sql"
psql_section mem "$WORK/mem.sql"
# MB are 10^6 bytes here: 1M x 20 float8 = 160 MB.
MATRIX_MB=$(awk -v n="$ROWS" -v p="$NFEAT" 'BEGIN { printf "%.1f", n * p * 8 / 1e6 }')
cp "$WORK/mem.out" "$WORK/mem.run.out"
read -r PRIV_MB RAW_MB POLL_MB HWMANON_MB <<<"$(mem_private "$WORK")"
if [[ $PRIV_MB != nan ]]; then
    read -r B_RSS _ B_ANON B_FILE B_SHMEM <"$WORK/mem.before"
    read -r A_RSS A_HWM A_ANON A_FILE A_SHMEM <"$WORK/mem.after"
    read -r P_ANON P_RSS P_SAMPLES <"$WORK/poll.out"
    HWM_RESET=$(cat "$WORK/mem.reset")
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
fi

# ---------------------------------------------------------------- 6. xgboost
# ml.train on all rows (test_size 0) against XGBoost in Python on the same
# rows in memory.  One psql session per ml.train run, alternating with one
# Python run; each Python run loads the exported file (not timed) and times
# DMatrix creation and xgb.train.
XGB_HP="{\"n_estimators\": $XGB_ROUNDS, \"max_depth\": 6, \"tree_method\": \"hist\"}"
XGB_TRAIN_SQL="SELECT * FROM ml.train('bx', 't', 'y', 'xgboost', hyperparams => '$XGB_HP', test_size => 0, deploy => 'never')"
ML_THREADS=$(psql_run -c "SHOW ml.threads")
XGB_NTHREAD=$ML_THREADS
[[ $XGB_NTHREAD == 0 ]] && XGB_NTHREAD=$(nproc)
say "xgboost ($XGB_ROUNDS rounds, depth 6, hist) on all $ROWS rows: ml.train versus XGBoost in Python," \
    "$XGB_REPS alternating runs each, nthread $XGB_NTHREAD (ml.threads = $ML_THREADS)"
: >"$WORK/xgb.py.out"
: >"$WORK/xgb.out"
XGB_OK=1
if ! "$PYTHON" -c 'import numpy, xgboost' 2>"$WORK/xgb.py.err"; then
    echo "   ERROR: $PYTHON cannot import numpy and xgboost (install python3-xgboost): $(tail -n 1 "$WORK/xgb.py.err")"
    XGB_OK=0
elif ! psql -X -q -c "COPY t ($cols, y) TO STDOUT WITH (FORMAT binary)" >"$WORK/t.copy" 2>"$WORK/xgb.copy.err"; then
    echo "   ERROR: COPY t TO STDOUT failed: $(head -n 1 "$WORK/xgb.copy.err")"
    XGB_OK=0
fi
if [[ $XGB_OK == 1 ]]; then
    echo "   exported t with COPY (FORMAT binary): $(awk -v b="$(stat -c %s "$WORK/t.copy")" 'BEGIN { printf "%.1f MB", b / 1e6 }')"
    for ((i = 1; i <= XGB_REPS; i++)); do
        # the last Python run also trains once with the per-round training
        # loss, as pgmaker's telemetry computes it (information)
        if ! "$PYTHON" "$BENCH_DIR/xgb_baseline.py" "$WORK/t.copy" "$NFEAT" "$XGB_NTHREAD" \
            "$XGB_ROUNDS" "$([[ $i == "$XGB_REPS" ]] && echo eval || echo noeval)" \
            >>"$WORK/xgb.py.out" 2>"$WORK/xgb.py.err"; then
            echo "   ERROR in the Python baseline: $(tail -n 1 "$WORK/xgb.py.err")"
            echo "XGB failed" >>"$WORK/xgb.py.out"
        fi
        {
            echo "SELECT count(*) FROM ml.models \\g /dev/null"
            timed count "SELECT count(*) FROM t"
            timed xgb "$XGB_TRAIN_SQL"
            echo "SELECT max(id) AS bench_model FROM ml.models \\gset"
            echo "SELECT 'XFIT ' || round((fit_seconds * 1000)::numeric, 3) || ' ' || n_train FROM ml.models WHERE id = :bench_model;"
            # elapsed_seconds counts from the start of the fit: round 1's
            # includes the pipeline fit, the float32 copy and the DMatrix
            echo "SELECT 'XLOG ' || count(*) || ' ' || round((min(elapsed_seconds) * 1000)::numeric, 3) || ' ' ||" \
                "round((max(elapsed_seconds) * 1000)::numeric, 3) FROM ml.training_info(:bench_model);"
        } >"$WORK/xgb$i.sql"
        psql_section "xgb$i" "$WORK/xgb$i.sql"
        cat "$WORK/xgb$i.out" >>"$WORK/xgb.out"
    done
    rm -f "$WORK/t.copy"
fi
# median of the "XGB <what> <ms>" lines; nan when a run failed or none ran
xgb_median() {
    if grep -q '^XGB failed' "$WORK/xgb.py.out" || ! grep -q "^XGB $1 " "$WORK/xgb.py.out"; then
        echo nan
        return
    fi
    awk -v w="$1" '$1 == "XGB" && $2 == w { print $3 }' "$WORK/xgb.py.out" | median
}
xgb_all() { awk -v w="$1" '$1 == "XGB" && $2 == w { printf "%s%.0f", s, $3; s = " " }' "$WORK/xgb.py.out"; }
PY_DM_MS=$(xgb_median dmatrix)
PY_TRAIN_MS=$(xgb_median train)
PY_ALL_MS=$(xgb_median dmatrix_train)
PY_EVAL_MS=$(xgb_median train_eval)
XGB_MS=nan
[[ $XGB_OK == 1 ]] && XGB_MS=$(timing_median "$WORK/xgb.out" xgb)
XGB_FIT_MS=$(awk '$1 == "XFIT" { print $2 }' "$WORK/xgb.out" | median)
XGB_NTRAIN=$(awk '$1 == "XFIT" { print $3; exit }' "$WORK/xgb.out")
XGB_ROUND1_MS=$(awk '$1 == "XLOG" { print $3 }' "$WORK/xgb.out" | median)
XGB_ROUNDS_MS=$(awk '$1 == "XLOG" { print $4 - $3 }' "$WORK/xgb.out" | median)
XGB_NLOG=$(awk '$1 == "XLOG" { print $2; exit }' "$WORK/xgb.out")
COUNT_MS=$(timing_median "$WORK/xgb.out" count)
if [[ $XGB_OK == 1 ]]; then
    echo "   Python $(awk '$1 == "XGB" && $2 == "version" { print "xgboost " $3; exit }' "$WORK/xgb.py.out")" \
        "on $(awk '$1 == "XGB" && $2 == "rows" { print $3; exit }' "$WORK/xgb.py.out") rows x $NFEAT (float32):"
    echo "     DMatrix          runs (ms): $(xgb_all dmatrix)"
    echo "     xgb.train        runs (ms): $(xgb_all train)"
    echo "     DMatrix + train  runs (ms): $(xgb_all dmatrix_train)"
    echo "     xgb.train with the training loss every round (as pgmaker's telemetry), 1 run (ms): $(xgb_all train_eval)"
    echo "   ml.train xgboost   runs (ms): $(timing_all "$WORK/xgb.out" xgb), on ${XGB_NTRAIN:-?} training rows (test_size 0)"
    echo "   where ml.train's time goes (medians):"
    awk -v tot="$XGB_MS" -v fit="$XGB_FIT_MS" -v r1="$XGB_ROUND1_MS" -v rr="$XGB_ROUNDS_MS" \
        -v n="${XGB_NLOG:-0}" -v pyt="$PY_TRAIN_MS" -v pydm="$PY_DM_MS" -v pye="$PY_EVAL_MS" -v cnt="$COUNT_MS" 'BEGIN {
        if (tot == "nan" || fit == "" || fit == "nan") { print "     (no figures: ml.train failed)"; exit }
        printf "     fit_seconds (pipeline fit, float32 copy, DMatrix, %d rounds): %.0f ms\n", n, fit
        printf "       of which up to the end of round 1 (telemetry): %.0f ms" \
            " (Python: DMatrix %.0f ms + its share of round 1)\n", r1, pydm
        if (n > 1)
            printf "       rounds 2..%d: %.0f ms = %.1f ms a round; Python xgb.train: %.1f ms a round," \
                " with the training loss every round: %.1f ms a round\n",
                n, rr, rr / (n - 1), pyt / n, (pye == "nan" ? 0 : pye / n)
        printf "     outside the fit (reading t, split, evaluation on the training rows, catalog): %.0f ms" \
            " (SELECT count(*) FROM t: %s ms)\n", tot - fit, cnt
    }'
fi

# ---------------------------------------------------------------- 3. xgboost prediction
# sum(ml.predict('bx', ...)) with the last model of part 6 deployed, against
# the scan of the same table, alternating, without parallel workers.  Over
# t when one run would take at most XP_MAX_MS, extrapolated from a run over
# tx, the first XP_LIMIT rows of t; else over tx, with its own scan.
XP_LIMIT=100000 XP_MAX_MS=20000
XP_TABLE=t XP_ROWS=$ROWS XP_OK=1 XP_TX=0
say "xgboost prediction: sum(ml.predict('bx', ...)) ($XGB_ROUNDS trees) versus the scan of the same table," \
    "$REPS alternating runs each, no parallel workers"
if ! psql_run -c "SELECT 'deployed model ' || model_id || ' of bx' FROM ml.deploy('bx', 'most_recent')" \
    >"$WORK/xdeploy.out" 2>"$WORK/xdeploy.err"; then
    echo "   ERROR: the model of bx could not be deployed: $(grep -m 1 -E 'ERROR|FATAL' "$WORK/xdeploy.err")"
    XP_OK=0
else
    echo "   $(cat "$WORK/xdeploy.out")"
fi
if [[ $XP_OK == 1 ]] && ((ROWS > XP_LIMIT)); then
    psql_run <<SQL
CREATE TABLE tx AS SELECT * FROM t LIMIT $XP_LIMIT;
VACUUM (ANALYZE) tx;
SQL
    XP_TX=1
    {
        echo "SET max_parallel_workers_per_gather = 0;"
        timed xprobe "SELECT sum(ml.predict('bx', tx)) FROM tx"
    } >"$WORK/xprobe.sql"
    psql_section xprobe "$WORK/xprobe.sql"
    XP_PROBE_MS=$(timing_median "$WORK/xprobe.out" xprobe)
    XP_EST_MS=$(awk -v ms="$XP_PROBE_MS" -v n="$ROWS" -v m="$XP_LIMIT" 'BEGIN { print (ms == "nan" ? "nan" : sprintf("%.0f", ms * n / m)) }')
    if [[ $XP_EST_MS == nan ]] || ((XP_EST_MS > XP_MAX_MS)); then
        XP_TABLE=tx XP_ROWS=$XP_LIMIT
    fi
    echo "   one run over tx ($XP_LIMIT rows): $XP_PROBE_MS ms; over t ($ROWS rows) about $XP_EST_MS ms:" \
        "$([[ $XP_TABLE == tx ]] && echo "more than $((XP_MAX_MS / 1000)) s, so measured over tx" || echo "measured over t")"
fi
XP_SCAN_SQL="SELECT sum($sumexpr) FROM $XP_TABLE"
XP_SQL="SELECT sum(ml.predict('bx', $XP_TABLE)) FROM $XP_TABLE"
: >"$WORK/xpredict.out"
if [[ $XP_OK == 1 ]]; then
    {
        echo "SET max_parallel_workers_per_gather = 0;"
        echo "$XP_SCAN_SQL \\g /dev/null"
        # loads the model into the session; the first run over the table is timed
        echo "SELECT ml.predict('bx', $ARRAY_LIT) \\g /dev/null"
        for ((i = 1; i <= REPS; i++)); do
            timed xscan "$XP_SCAN_SQL"
            timed xpredict "$XP_SQL"
        done
    } >"$WORK/xpredict.sql"
    psql_section xpredict "$WORK/xpredict.sql"
fi
XP_SCAN_MS=nan XP_MS=nan
if [[ $XP_OK == 1 ]]; then
    XP_SCAN_MS=$(timing_median "$WORK/xpredict.out" xscan)
    XP_MS=$(timing_median "$WORK/xpredict.out" xpredict)
    echo "   scan of $XP_TABLE    runs (ms): $(timing_all "$WORK/xpredict.out" xscan)"
    echo "   predict over $XP_TABLE runs (ms): $(timing_all "$WORK/xpredict.out" xpredict)"
fi
[[ $XP_TX == 0 ]] || psql_run -c "DROP TABLE tx"

# ---------------------------------------------------------------- 4. pgbench
# after part 6, whose last xgboost model of bx is deployed by then
say "pgbench -M prepared -c 2 -j 2 -T $PGB_SECONDS: $PGB_ROUNDS alternating rounds per script"
echo "SELECT ml.predict('bench', $ARRAY_LIT);" >"$WORK/predict.pgb"
echo "SELECT $ARRAY_LIT;" >"$WORK/array.pgb"
# Returning the 20-element array costs its text output; a query returning one
# number is the stricter floor, reported for information.
echo "SELECT cardinality($ARRAY_LIT);" >"$WORK/scalar.pgb"
# the xgboost model of 100 trees, for information
echo "SELECT ml.predict('bx', $ARRAY_LIT);" >"$WORK/xpredict.pgb"
: >"$WORK/pgbench.out"
for ((i = 1; i <= PGB_ROUNDS; i++)); do
    for s in array predict scalar xpredict; do
        echo "$s $(pgbench_tps "$s")" >>"$WORK/pgbench.out"
    done
done
TPS_ARRAY=$(tps_median array)
TPS_PRED=$(tps_median predict)
TPS_SCALAR=$(tps_median scalar)
TPS_XPRED=$(tps_median xpredict)
echo "   SELECT array      TPS: $(tps_all array)"
echo "   SELECT ml.predict TPS: $(tps_all predict)"
echo "   SELECT cardinality(array) (one number, folded at plan time) TPS: $(tps_all scalar)"
echo "   SELECT ml.predict('bx') (xgboost, $XGB_ROUNDS trees) TPS: $(tps_all xpredict)"

# ---------------------------------------------------------------- 7. kmeans
KM_TRAIN_SQL="SELECT * FROM ml.train('bk', 't', NULL, 'kmeans', hyperparams => '{\"n_clusters\": 8, \"n_init\": 1, \"max_iter\": 20, \"tol\": 0}', test_size => 0, deploy => 'never')"
say "kmeans (8 clusters, n_init 1, max_iter 20, tol 0) on all $ROWS rows: $KMEANS_REPS runs"
{
    echo "SELECT count(*) FROM ml.models \\g /dev/null"
    for ((i = 1; i <= KMEANS_REPS; i++)); do
        timed kmeans "$KM_TRAIN_SQL"
        echo "SELECT max(id) AS bench_model FROM ml.models \\gset"
        echo "SELECT 'KFIT ' || round((fit_seconds * 1000)::numeric, 3) FROM ml.models WHERE id = :bench_model;"
        # iterations, elapsed at the last, the median step between two
        echo "SELECT 'KLOG ' || count(*) || ' ' || round((max(elapsed_seconds) * 1000)::numeric, 3) || ' ' ||" \
            "round((min(elapsed_seconds) * 1000)::numeric, 3) || ' ' ||" \
            "coalesce(round((percentile_cont(0.5) WITHIN GROUP (ORDER BY d) * 1000)::numeric, 3)::text, 'nan')" \
            "FROM (SELECT elapsed_seconds, elapsed_seconds - lag(elapsed_seconds) OVER (ORDER BY iteration) AS d" \
            "FROM ml.training_info(:bench_model)) s;"
    done
} >"$WORK/kmeans.sql"
psql_section kmeans "$WORK/kmeans.sql"
KM_MS=$(timing_median "$WORK/kmeans.out" kmeans)
KM_FIT_MS=$(awk '$1 == "KFIT" { print $2 }' "$WORK/kmeans.out" | median)
KM_ITER_MS=$(awk '$1 == "KLOG" { print $5 }' "$WORK/kmeans.out" | median)
KM_NITER=$(awk '$1 == "KLOG" { printf "%s%s", s, $2; s = " " }' "$WORK/kmeans.out")
KM_FIRST_MS=$(awk '$1 == "KLOG" { print $4 }' "$WORK/kmeans.out" | median)
grep -q '^FAILED kmeans' "$WORK/kmeans.out" && KM_ITER_MS=nan
echo "   ml.train kmeans runs (ms): $(timing_all "$WORK/kmeans.out" kmeans); fit_seconds median $KM_FIT_MS ms"
echo "   Lloyd iterations per run (count of ml.training_info): $KM_NITER"
echo "   per run, median ms between consecutive iterations: $(awk '$1 == "KLOG" { printf "%s%s", s, $5; s = " " }' "$WORK/kmeans.out")"
echo "   elapsed at the end of iteration 1 (pipeline fit, materialising, k-means++ seeding, one step): $KM_FIRST_MS ms"
echo "   note: kmeans materialises the standardised $ROWS x $NFEAT matrix in memory before iterating," \
    "so its Lloyd iterations do not read the table again; the comparison with a bare scan is of cost per pass."

# ---------------------------------------------------------------- 8. profile
# ml.profile('t') against one query computing count, avg, stddev, min and
# max of every column of t, alternating, both without parallel workers (an
# SPI cursor, which ml.profile reads its source through, never runs in
# parallel).  t is analyzed, so ml.profile sizes its distinct-value tables
# from the statistics; a query of computed columns, which has none, is
# timed too, and the aggregates with parallel workers, for information.
PROFILE_REPS=${BENCH_PROFILE_REPS:-3}
[[ $PROFILE_REPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_PROFILE_REPS must be a positive integer, not '$PROFILE_REPS'"
AGG_SQL="" PROFILE_QUERY="" STATS_SQL=""
for c in ${cols//,/} y; do
    AGG_SQL+="${AGG_SQL:+, }count($c), avg($c), stddev($c), min($c), max($c)"
    PROFILE_QUERY+="${PROFILE_QUERY:+, }$c + 0 AS $c"
    STATS_SQL+=", ml.numeric_stats($c), ml.approx_distinct($c)"
done
AGG_SQL="SELECT $AGG_SQL FROM t"
STATS_SQL="SELECT count(*)$STATS_SQL FROM t"
PROFILE_SQL="SELECT sum(count) FROM ml.profile('t')"
PROFILE_NOSTATS_SQL="SELECT sum(count) FROM ml.profile('SELECT $PROFILE_QUERY FROM t')"
say "ml.profile('t') versus count, avg, stddev, min, max of its $((NFEAT + 1)) columns in one query:" \
    "$PROFILE_REPS alternating runs each, no parallel workers"
{
    echo "SET max_parallel_workers_per_gather = 0;"
    echo "$AGG_SQL \\g /dev/null"
    for ((i = 1; i <= PROFILE_REPS; i++)); do
        timed aggs "$AGG_SQL"
        timed profile "$PROFILE_SQL"
        timed stats "$STATS_SQL"
    done
    timed profile_nostats "$PROFILE_NOSTATS_SQL"
    echo "SELECT 'PROWS ' || min(count) || ' ' || max(count) || ' ' || count(*) FROM ml.profile('t');"
    echo "RESET max_parallel_workers_per_gather;"
    for ((i = 1; i <= PROFILE_REPS; i++)); do
        timed aggs_parallel "$AGG_SQL"
        timed stats_parallel "$STATS_SQL"
    done
} >"$WORK/profile.sql"
psql_section profile "$WORK/profile.sql"
AGG_MS=$(timing_median "$WORK/profile.out" aggs)
PROF_MS=$(timing_median "$WORK/profile.out" profile)
PROF_NS_MS=$(timing_median "$WORK/profile.out" profile_nostats)
PAGG_MS=$(timing_median "$WORK/profile.out" aggs_parallel)
PROF_RATIO=$(ratio "$PROF_MS" "$AGG_MS")
PROF_NS_RATIO=$(ratio "$PROF_NS_MS" "$AGG_MS")
PROF_P_RATIO=$(ratio "$PROF_MS" "$PAGG_MS")
STATS_MS=$(timing_median "$WORK/profile.out" stats)
PSTATS_MS=$(timing_median "$WORK/profile.out" stats_parallel)
STATS_RATIO=$(ratio "$STATS_MS" "$AGG_MS")
PSTATS_RATIO=$(ratio "$PSTATS_MS" "$PAGG_MS")
STATS_SPEEDUP=$(ratio "$STATS_MS" "$PSTATS_MS")
echo "   aggregates runs (ms): $(timing_all "$WORK/profile.out" aggs)"
echo "   ml.profile runs (ms): $(timing_all "$WORK/profile.out" profile)"
echo "   ml.profile of the same columns computed in a query (no statistics), 1 run (ms): $PROF_NS_MS"
echo "   aggregates with parallel workers, runs (ms): $(timing_all "$WORK/profile.out" aggs_parallel)"
echo "   ml.numeric_stats + ml.approx_distinct, runs (ms): $(timing_all "$WORK/profile.out" stats)"
echo "   the same with parallel workers, runs (ms): $(timing_all "$WORK/profile.out" stats_parallel)"
echo "   ml.profile rows: $(awk '$1 == "PROWS" { print $4 " columns, count from " $2 " to " $3 }' "$WORK/profile.out")"

# ---------------------------------------------------------------- 9. least-squares aggregate
AGGFIT_SQL="SELECT ml.linear_fit(y, ARRAY[$cols]) FROM t"
say "ml.linear_fit aggregate without and with parallel workers: $REPS runs each, alternating"
{
    echo "$AGGFIT_SQL \\g /dev/null"
    for ((i = 1; i <= REPS; i++)); do
        echo "SET max_parallel_workers_per_gather = 0;"
        timed fit_serial "$AGGFIT_SQL"
        echo "SET max_parallel_workers_per_gather = $DEFAULT_WORKERS;"
        timed fit_parallel "$AGGFIT_SQL"
    done
    echo "EXPLAIN (COSTS OFF) $AGGFIT_SQL;"
} >"$WORK/aggfit.sql"
psql_section aggfit "$WORK/aggfit.sql"
AGGFIT_S_MS=$(timing_median "$WORK/aggfit.out" fit_serial)
AGGFIT_P_MS=$(timing_median "$WORK/aggfit.out" fit_parallel)
AGGFIT_PARTIAL=$(grep -c "Partial Aggregate" "$WORK/aggfit.out" || true)
echo "   no workers runs (ms): $(timing_all "$WORK/aggfit.out" fit_serial)"
echo "   parallel   runs (ms): $(timing_all "$WORK/aggfit.out" fit_parallel)"
echo "   plan: $([[ $AGGFIT_PARTIAL -gt 0 ]] && echo "Partial Aggregate under Gather" || echo "no partial aggregate")"

# ---------------------------------------------------------------- 10. ml.train by aggregate
AGGTRAIN_SQL="SELECT * FROM ml.train('bagg', 't', 'y', 'linear', deploy => 'always')"
say "ml.train linear on the aggregate path, without and with parallel workers: $TRAIN_REPS runs each, alternating"
{
    echo "SET ml.aggregate_train_min_rows = 0;"
    for ((i = 1; i <= TRAIN_REPS; i++)); do
        echo "SET max_parallel_workers_per_gather = 0;"
        timed aggtrain_serial "$AGGTRAIN_SQL"
        echo "SET max_parallel_workers_per_gather = $DEFAULT_WORKERS;"
        timed aggtrain_parallel "$AGGTRAIN_SQL"
    done
    echo "SELECT 'AMETRICS ' || metrics::text FROM ml.models ORDER BY id DESC LIMIT 1;"
} >"$WORK/aggtrain.sql"
psql_section aggtrain "$WORK/aggtrain.sql"
AGGTRAIN_S_MS=$(timing_median "$WORK/aggtrain.out" aggtrain_serial)
AGGTRAIN_P_MS=$(timing_median "$WORK/aggtrain.out" aggtrain_parallel)
echo "   no workers runs (ms): $(timing_all "$WORK/aggtrain.out" aggtrain_serial)"
echo "   parallel   runs (ms): $(timing_all "$WORK/aggtrain.out" aggtrain_parallel)"
echo "   hold-out metrics: $(awk '$1 == "AMETRICS" { $1 = ""; print substr($0, 2) }' "$WORK/aggtrain.out")"

# ---------------------------------------------------------------- 11. Python route
PY_REPS=${BENCH_PY_REPS:-2}
[[ $PY_REPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_PY_REPS must be a positive integer, not '$PY_REPS'"
# ml.train xgboost with part 6's hyperparams and the default test_size
# (0.25), as the Python route holds out 25% too
XGBS_TRAIN_SQL="SELECT * FROM ml.train('bxs', 't', 'y', 'xgboost', hyperparams => '$XGB_HP', deploy => 'never')"
say "the Python route (psycopg2 + numpy + scikit-learn, xgboost) versus ml.train linear, logistic and xgboost:" \
    "$PY_REPS alternating runs, xgboost nthread $XGB_NTHREAD"
: >"$WORK/py.out"
: >"$WORK/pylog.out"
PY_OK=1
PY_XGB_ARGS=("$XGB_NTHREAD" "$XGB_ROUNDS")
if ! "$PYTHON" -c 'import numpy, psycopg2, sklearn' 2>"$WORK/py.err"; then
    echo "   ERROR: $PYTHON cannot import numpy, psycopg2 and sklearn (install python3-psycopg2, python3-sklearn): $(tail -n 1 "$WORK/py.err")"
    PY_OK=0
elif ! "$PYTHON" -c 'import xgboost' 2>"$WORK/py.err"; then
    echo "   ERROR: $PYTHON cannot import xgboost (install python3-xgboost): $(tail -n 1 "$WORK/py.err"); the Python route without it"
    PY_XGB_ARGS=()
fi
for ((i = 1; PY_OK == 1 && i <= PY_REPS; i++)); do
    if ! "$PYTHON" "$BENCH_DIR/py_route.py" "$NFEAT" "$THRESHOLD" "${PY_XGB_ARGS[@]}" >>"$WORK/py.out" 2>"$WORK/py.err"; then
        echo "   ERROR in the Python route: $(tail -n 1 "$WORK/py.err")"
        echo "PY failed" >>"$WORK/py.out"
    fi
    {
        echo "SET max_parallel_workers_per_gather = 0;"
        timed logistic "$LOG_TRAIN_SQL"
        echo "SELECT 'LMETRICS ' || (metrics->>'accuracy') FROM ml.models ORDER BY id DESC LIMIT 1;"
        timed xgbs "$XGBS_TRAIN_SQL"
        echo "SELECT 'XMETRICS ' || coalesce(metrics->>'r2', 'nan') || ' ' || n_train || ' ' || n_test FROM ml.models ORDER BY id DESC LIMIT 1;"
    } >"$WORK/pylog$i.sql"
    psql_section "pylog$i" "$WORK/pylog$i.sql"
    cat "$WORK/pylog$i.out" >>"$WORK/pylog.out"
done
py_median() {
    if grep -q '^PY failed' "$WORK/py.out" || ! grep -q "^PY $1 " "$WORK/py.out"; then echo nan; return; fi
    awk -v w="$1" '$1 == "PY" && $2 == w { print $3 }' "$WORK/py.out" | median
}
PY_LIN_MS=$(py_median linear_total)
PY_LOG_MS=$(py_median logistic_total)
PY_PULL_MS=$(py_median pull)
PY_XGB_MS=$(py_median xgboost_total)
# the hold-out figures are the same every run: the last one, unrounded
PY_R2=$(awk '$1 == "PY" && $2 == "linear_r2" { v = $3 } END { print (v == "" ? "nan" : v) }' "$WORK/py.out")
PY_ACC=$(awk '$1 == "PY" && $2 == "logistic_accuracy" { v = $3 } END { print (v == "" ? "nan" : v) }' "$WORK/py.out")
PY_XR2=$(awk '$1 == "PY" && $2 == "xgboost_r2" { v = $3 } END { print (v == "" ? "nan" : v) }' "$WORK/py.out")
LOG_MS=$(timing_median "$WORK/pylog.out" logistic)
XGBS_MS=$(timing_median "$WORK/pylog.out" xgbs)
# the last run's; nan when a run failed
ML_XR2=$(awk '$1 == "XMETRICS" { v = $2 } END { print (v == "" ? "nan" : v) }' "$WORK/pylog.out")
grep -q '^FAILED xgbs$' "$WORK/pylog.out" && ML_XR2=nan
ML_R2=$(awk '$1 == "METRICS" { print $0 }' "$WORK/train.out" | sed -n 's/.*"r2": \([0-9.e-]*\).*/\1/p' | tail -n 1)
ML_ACC=$(awk '$1 == "LMETRICS" { print $2 }' "$WORK/pylog.out" | tail -n 1)
echo "   Python pull (query, fetchall, numpy matrix), runs (ms): $(awk '$1 == "PY" && $2 == "pull" { printf "%s%.0f", s, $3; s = " " }' "$WORK/py.out")"
echo "   Python linear end to end, runs (ms): $(awk '$1 == "PY" && $2 == "linear_total" { printf "%s%.0f", s, $3; s = " " }' "$WORK/py.out")"
echo "   Python logistic end to end, runs (ms): $(awk '$1 == "PY" && $2 == "logistic_total" { printf "%s%.0f", s, $3; s = " " }' "$WORK/py.out")"
echo "   Python xgboost end to end, runs (ms): $(awk '$1 == "PY" && $2 == "xgboost_total" { printf "%s%.0f", s, $3; s = " " }' "$WORK/py.out")" \
    "(of which DMatrix: $(awk '$1 == "PY" && $2 == "xgboost_dmatrix" { printf "%s%.0f", s, $3; s = " " }' "$WORK/py.out");" \
    "xgb.train: $(awk '$1 == "PY" && $2 == "xgboost_train" { printf "%s%.0f", s, $3; s = " " }' "$WORK/py.out");" \
    "xgboost $(awk '$1 == "PY" && $2 == "xgboost_version" { v = $3 } END { print (v == "" ? "?" : v) }' "$WORK/py.out"))"
echo "   ml.train logistic runs (ms): $(timing_all "$WORK/pylog.out" logistic)"
echo "   ml.train xgboost (test_size 0.25) runs (ms): $(timing_all "$WORK/pylog.out" xgbs);" \
    "training / hold-out rows: $(awk '$1 == "XMETRICS" { v = $3 " / " $4 } END { print (v == "" ? "?" : v) }' "$WORK/pylog.out")"
echo "   hold-out R^2: Python $PY_R2, ml.train ${ML_R2:-?}; accuracy: Python $PY_ACC, ml.train ${ML_ACC:-?};" \
    "xgboost R^2: Python $PY_XR2, ml.train $ML_XR2"

# ---------------------------------------------------------------- 12. scaling
# ml.train linear at a tenth of, at, and at four times BENCH_ROWS rows (the
# first rows of t, t itself, and a table t4 generated like t): its default
# path (in memory unless the rows would take more than half of
# ml.max_train_memory) and the aggregate path, with parallel workers; then
# the private memory of one run of each at each size.
SCALE_REPS=${BENCH_SCALE_REPS:-2}
[[ $SCALE_REPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_SCALE_REPS must be a positive integer, not '$SCALE_REPS'"
S1=$((ROWS / 10)) S2=$ROWS S3=$((ROWS * 4))
say "scaling: ml.train linear on $S1, $S2 and $S3 rows, default and aggregate path, $SCALE_REPS runs each"
psql_run <<SQL
CREATE TABLE t1 AS SELECT * FROM t LIMIT $S1;
SELECT setseed(0.43) \g /dev/null
CREATE TABLE t4 AS
SELECT $cols, $ysum + 0.1 * (random() - 0.5) AS y
  FROM (SELECT $feats FROM generate_series(1, $S3) OFFSET 0) s;
VACUUM (ANALYZE) t1, t4;
SQL
scale_table() { case $1 in 1) echo t1 ;; 2) echo t ;; 3) echo t4 ;; esac; }
scale_sql() { echo "SELECT * FROM ml.train('bscale$1', '$(scale_table "$1")', 'y', 'linear', deploy => 'never')"; }
{
    for ((i = 1; i <= SCALE_REPS; i++)); do
        for k in 1 2 3; do
            echo "RESET ml.aggregate_train_min_rows;"
            timed "scale_default_$k" "$(scale_sql "$k")"
            echo "SET ml.aggregate_train_min_rows = 0;"
            timed "scale_agg_$k" "$(scale_sql "$k")"
        done
    done
    for k in 1 2 3; do
        echo "SELECT 'SPLIT $k ' || coalesce(metrics->>'split', 'in memory') || ' ' || n_train || ' ' || n_test FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE p.name = 'bscale$k' ORDER BY m.id LIMIT 1;"
    done
} >"$WORK/scale.sql"
psql_section scale "$WORK/scale.sql"
for k in 1 2 3; do
    printf -v "SC_DEF_$k" '%s' "$(timing_median "$WORK/scale.out" "scale_default_$k")"
    printf -v "SC_AGG_$k" '%s' "$(timing_median "$WORK/scale.out" "scale_agg_$k")"
    echo "   $(scale_table "$k"): default path runs (ms): $(timing_all "$WORK/scale.out" "scale_default_$k");" \
        "aggregate path: $(timing_all "$WORK/scale.out" "scale_agg_$k");" \
        "default path's split, n_train, n_test: $(awk -v k="$k" '$1 == "SPLIT" && $2 == k { $1 = $2 = ""; print substr($0, 3) }' "$WORK/scale.out")"
    for mode in default agg; do
        d=$WORK/mem_${mode}_$k
        mkdir -p "$d"
        prelude="RESET ml.aggregate_train_min_rows;"
        [[ $mode == agg ]] && prelude="SET ml.aggregate_train_min_rows = 0;"
        mem_script "$d" "$prelude" "$(scale_sql "$k")" >"$d/mem.sql"
        psql_section "mem_${mode}_$k" "$d/mem.sql"
        cp "$WORK/mem_${mode}_$k.out" "$d/mem.run.out"
        read -r mb _ <<<"$(mem_private "$d")"
        printf -v "SC_MEM_${mode^^}_$k" '%s' "$mb"
        echo "   $(scale_table "$k"), $mode path: private memory peak $mb MB"
    done
done
psql_run -c "DROP TABLE t4"
# ---------------------------------------------------------------- 13. batch prediction
# ml.batch_predict of the 'bench' model over tk (t with a bigint primary key
# id), from queueing to the end of the job as ml.job_wait sees it, with one
# worker and with two, against CREATE TABLE AS SELECT id, ml.predict(...)
# in the session; alternating, each output table dropped after its run.
BATCH_REPS=${BENCH_BATCH_REPS:-2}
[[ $BATCH_REPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_BATCH_REPS must be a positive integer, not '$BATCH_REPS'"
say "batch prediction: ml.batch_predict with 1 and 2 workers versus CREATE TABLE AS, $BATCH_REPS runs each"
psql_run <<SQL
CREATE TABLE tk AS SELECT row_number() OVER () AS id, * FROM t;
ALTER TABLE tk ADD PRIMARY KEY (id);
VACUUM (ANALYZE) tk;
SQL
batch_timed() { # label options
    cat <<SQL
SELECT clock_timestamp() AS bench_t0 \gset
SELECT ml.batch_predict('bench', 'tk', 'bp_out', 'id', '$2') AS bench_job \gset
SELECT status = 'succeeded' AS bench_ok, coalesce(error, '') AS bench_err FROM ml.job_wait(:bench_job) \gset
\if :bench_ok
SELECT round(extract(epoch FROM clock_timestamp() - :'bench_t0'::timestamptz) * 1000, 3) AS bench_ms \gset
\echo TIMING $1 :bench_ms
\else
\echo FAILED $1
\echo ERROR: batch job :bench_job: :bench_err
\endif
SELECT 'BROWS $1 ' || count(*) || ' ' || count(DISTINCT id) FROM bp_out;
DROP TABLE bp_out;
SQL
}
{
    for ((i = 1; i <= BATCH_REPS; i++)); do
        timed batch_ctas "CREATE TABLE bp_ctas AS SELECT id, ml.predict('bench', tk) AS prediction FROM tk"
        echo "DROP TABLE IF EXISTS bp_ctas;"
        batch_timed batch_1 '{}'
        batch_timed batch_2 '{"workers": 2}'
    done
} >"$WORK/batch.sql"
psql_section batch "$WORK/batch.sql"
BATCH_CTAS_MS=$(timing_median "$WORK/batch.out" batch_ctas)
BATCH_1_MS=$(timing_median "$WORK/batch.out" batch_1)
BATCH_2_MS=$(timing_median "$WORK/batch.out" batch_2)
echo "   CREATE TABLE AS runs (ms): $(timing_all "$WORK/batch.out" batch_ctas)"
echo "   1 worker  runs (ms): $(timing_all "$WORK/batch.out" batch_1)"
echo "   2 workers runs (ms): $(timing_all "$WORK/batch.out" batch_2)"
echo "   rows and distinct keys written: $(awk '$1 == "BROWS" { printf "%s%s %s/%s", s, $2, $3, $4; s = ", " }' "$WORK/batch.out")"
psql_run -c "DROP TABLE tk"

# ---------------------------------------------------------------- summary
TRAIN_RATIO=$(ratio "$TRAIN_MS" "$T2_TSCAN_MS")
RIDGE_RATIO=$(ratio "$T2_RIDGE_MS" "$T2_TSCAN_MS")
LOGT_RATIO=$(ratio "$T2_LOGISTIC_MS" "$T2_BSCAN_MS")
TRAIN_P_RATIO=$(ratio "$T2_TRAIN_P_MS" "$T2_TSCAN_P_MS")
RIDGE_P_RATIO=$(ratio "$T2_RIDGE_P_MS" "$T2_TSCAN_P_MS")
LOGT_P_RATIO=$(ratio "$T2_LOGISTIC_P_MS" "$T2_BSCAN_P_MS")
XP_RATIO=$(ratio "$XP_MS" "$XP_SCAN_MS")
TPS_XRATIO=$(ratio "$TPS_XPRED" "$TPS_ARRAY")
PRED_RATIO=$(ratio "$PRED_MS" "$SCAN_MS")
PPRED_RATIO=$(ratio "$PPRED_MS" "$PSCAN_MS")
ROW_RATIO=$(ratio "$ROW_MS" "$SCAN_MS")
PRED_ROW_RATIO=$(ratio "$PRED_MS" "$ROW_MS")
TPS_RATIO=$(ratio "$TPS_PRED" "$TPS_ARRAY")
TPS_SRATIO=$(ratio "$TPS_PRED" "$TPS_SCALAR")
MEM_RATIO=$(ratio "$PRIV_MB" "$MATRIX_MB")
RAW_RATIO=$(ratio "$RAW_MB" "$MATRIX_MB")
XGB_RATIO=$(ratio "$XGB_MS" "$PY_ALL_MS")
XGB_TRATIO=$(ratio "$XGB_MS" "$PY_TRAIN_MS")
XGB_FRATIO=$(ratio "$XGB_FIT_MS" "$PY_ALL_MS")
KM_RATIO=$(ratio "$KM_ITER_MS" "$SCAN_MS")
AGGFIT_SPEEDUP=$(ratio "$AGGFIT_S_MS" "$AGGFIT_P_MS")
AGGFIT_S_RATIO=$(ratio "$AGGFIT_S_MS" "$SCAN_MS")
AGGFIT_P_RATIO=$(ratio "$AGGFIT_P_MS" "$PSCAN_MS")
AGGTRAIN_SPEEDUP=$(ratio "$AGGTRAIN_S_MS" "$AGGTRAIN_P_MS")
AGGTRAIN_S_RATIO=$(ratio "$AGGTRAIN_S_MS" "$SCAN_MS")
AGGTRAIN_P_RATIO=$(ratio "$AGGTRAIN_P_MS" "$PSCAN_MS")
PY_LIN_RATIO=$(ratio "$PY_LIN_MS" "$TRAIN_MS")
PY_LOG_RATIO=$(ratio "$PY_LOG_MS" "$LOG_MS")
PY_XGB_RATIO=$(ratio "$PY_XGB_MS" "$XGBS_MS")
R2_DIFF=$(reldiff "${ML_R2:-nan}" "$PY_R2")
XR2_DIFF=$(reldiff "$ML_XR2" "$PY_XR2")
ACC_DIFF=$(reldiff "${ML_ACC:-nan}" "$PY_ACC")
# time per row at four times the rows against time per row at BENCH_ROWS
per_row_growth() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || a == "" || b == "" || b == 0) print "nan"; else printf "%.2f\n", (a / 4) / b }'; }
SC_AGG_GROWTH=$(per_row_growth "$SC_AGG_3" "$SC_AGG_2")
SC_DEF_GROWTH=$(per_row_growth "$SC_DEF_3" "$SC_DEF_2")
SC_MEM_GROWTH=$(ratio "$SC_MEM_AGG_3" "$SC_MEM_AGG_2")
BATCH_RATIO=$(ratio "$BATCH_CTAS_MS" "$BATCH_1_MS")
BATCH_SPEEDUP=$(ratio "$BATCH_1_MS" "$BATCH_2_MS")

summary() {
summary_head
row "1. scan sum(c1..c20+y), no workers" "$(fig "$SCAN_MS" ms)" "-" "-"
row "   scan, parallel ($PWORKERS workers planned)" "$(fig "$PSCAN_MS" ms)" "-" "-"
row "2. scans alongside, of t / of tb" "$(scan_pair "$T2_TSCAN_MS" "$T2_BSCAN_MS")" "-" "-"
check "   ml.train linear / scan" "$(fig "$TRAIN_MS" ms "$TRAIN_RATIO")" "$TRAIN_RATIO" "<=" 1.3
check "   ml.train ridge / scan" "$(fig "$T2_RIDGE_MS" ms "$RIDGE_RATIO")" "$RIDGE_RATIO" "<=" 1.3
check "   ml.train logistic on tb / scan of tb" "$(fig "$T2_LOGISTIC_MS" ms "$LOGT_RATIO")" "$LOGT_RATIO" "<=" 1.3
row "   parallel scans, of t / of tb" "$(scan_pair "$T2_TSCAN_P_MS" "$T2_BSCAN_P_MS")" "-" "-"
row "   parallel: linear / parallel scan (info)" "$(fig "$T2_TRAIN_P_MS" ms "$TRAIN_P_RATIO")" "(info)" "-"
row "   parallel: ridge / parallel scan (info)" "$(fig "$T2_RIDGE_P_MS" ms "$RIDGE_P_RATIO")" "(info)" "-"
row "   parallel: logistic / parallel tb (info)" "$(fig "$T2_LOGISTIC_P_MS" ms "$LOGT_P_RATIO")" "(info)" "-"
check "3. sum(ml.predict(t)) / scan, no workers" "$(fig "$PRED_MS" ms "$PRED_RATIO")" "$PRED_RATIO" "<=" 1.5
check "   sum(ml.predict(t)) / scan, parallel" "$(fig "$PPRED_MS" ms "$PPRED_RATIO")" "$PPRED_RATIO" "<=" 1.5
row "   count(t), the row value alone / scan (info)" "$(fig "$ROW_MS" ms "$ROW_RATIO")" "(info)" "-"
row "   sum(ml.predict(t)) / count(t) (info)" "$([[ $PRED_ROW_RATIO == nan ]] && echo error || echo "${PRED_ROW_RATIO}x")" "(info)" "-"
row "   xgboost predict / scan, $([[ $XP_TABLE == t ]] && echo "all $XP_ROWS rows" || echo "first $XP_ROWS rows") (info)" \
    "$(fig "$XP_MS" ms "$XP_RATIO")" "(info)" "-"
row "4. pgbench SELECT ARRAY[20]" "$(fig "$(tps_fig "$TPS_ARRAY")" tps)" "-" "-"
check "   pgbench ml.predict(ARRAY[20]) / array" "$(fig "$(tps_fig "$TPS_PRED")" tps "$TPS_RATIO")" "$TPS_RATIO" ">=" 0.80
row "   pgbench one-number query (info)" "$(fig "$(tps_fig "$TPS_SCALAR")" tps)" "(info)" "-"
row "   pgbench ml.predict / one-number (info)" "$([[ $TPS_SRATIO == nan ]] && echo error || echo "${TPS_SRATIO}x")" "(info)" "-"
row "   pgbench xgboost predict / array (info)" "$(fig "$(tps_fig "$TPS_XPRED")" tps "$TPS_XRATIO")" "(info)" "-"
check "5. train private memory peak / ${MATRIX_MB} MB" "$(fig "$PRIV_MB" MB "$MEM_RATIO")" "$MEM_RATIO" "<=" 1.5
row "   train VmHWM - VmRSS before (info)" "$(fig "$RAW_MB" MB "$RAW_RATIO")" "(info)" "-"
row "6. Python xgb: DMatrix + train (a)" "$(fig "$PY_ALL_MS" ms)" "-" "-"
row "   Python xgb: train alone (b)" "$(fig "$PY_TRAIN_MS" ms)" "-" "-"
check "   ml.train xgboost, all rows / (a)" "$(fig "$XGB_MS" ms "$XGB_RATIO")" "$XGB_RATIO" "<=" 1.15
row "   ml.train xgboost / (b) (info)" "$([[ $XGB_TRATIO == nan ]] && echo error || echo "${XGB_TRATIO}x")" "(info)" "-"
row "   xgboost fit_seconds / (a) (info)" "$(fig "$XGB_FIT_MS" ms "$XGB_FRATIO")" "(info)" "-"
check "7. kmeans s per Lloyd iteration / scan" "$(fig "$KM_ITER_MS" ms "$KM_RATIO")" "$KM_RATIO" "<=" 3.0
row "   kmeans ml.train, $(awk '{ print $1 }' <<<"${KM_NITER:-?}") iterations (info)" "$(fig "$KM_MS" ms)" "(info)" "-"

row "8. count/avg/stddev/min/max of t, no workers" "$(fig "$AGG_MS" ms)" "-" "-"
check "   ml.profile('t') / aggregates" "$(fig "$PROF_MS" ms "$PROF_RATIO")" "$PROF_RATIO" "<=" 4.0
row "   ml.profile, no statistics / aggs (info)" "$(fig "$PROF_NS_MS" ms "$PROF_NS_RATIO")" "(info)" "-"
row "   ml.profile / aggregates parallel (info)" "$(fig "$PAGG_MS" ms "$PROF_P_RATIO")" "(info)" "-"
row "   numeric_stats+approx_distinct / aggs (info)" "$(fig "$STATS_MS" ms "$STATS_RATIO")" "(info)" "-"
row "   the same, parallel / aggs parallel (info)" "$(fig "$PSTATS_MS" ms "$PSTATS_RATIO")" "(info)" "-"
row "   numeric_stats+approx_distinct speedup (info)" "$([[ $STATS_SPEEDUP == nan ]] && echo error || echo "${STATS_SPEEDUP}x")" "(info)" "-"
row "9. ml.linear_fit aggregate, no workers" "$(fig "$AGGFIT_S_MS" ms)" "-" "-"
check "   ml.linear_fit no workers / parallel" "$(fig "$AGGFIT_P_MS" ms "$AGGFIT_SPEEDUP")" "$AGGFIT_SPEEDUP" ">=" 1.5
row "   ml.linear_fit / scan, no workers (info)" "$([[ $AGGFIT_S_RATIO == nan ]] && echo error || echo "${AGGFIT_S_RATIO}x")" "(info)" "-"
row "   ml.linear_fit / scan, parallel (info)" "$([[ $AGGFIT_P_RATIO == nan ]] && echo error || echo "${AGGFIT_P_RATIO}x")" "(info)" "-"
row "10. ml.train linear by aggregate, no workers" "$(fig "$AGGTRAIN_S_MS" ms "$AGGTRAIN_S_RATIO")" "(info)" "-"
check "   no workers / parallel" "$(fig "$AGGTRAIN_P_MS" ms "$AGGTRAIN_SPEEDUP")" "$AGGTRAIN_SPEEDUP" ">=" 1.5
check "   parallel / parallel scan" "${AGGTRAIN_P_RATIO}x" "$AGGTRAIN_P_RATIO" "<=" 1.3
row "11. Python linear, end to end" "$(fig "$PY_LIN_MS" ms)" "-" "-"
check "   Python / ml.train linear (2.)" "${PY_LIN_RATIO}x" "$PY_LIN_RATIO" ">=" 10
row "   Python logistic, end to end" "$(fig "$PY_LOG_MS" ms)" "-" "-"
row "   ml.train logistic" "$(fig "$LOG_MS" ms)" "-" "-"
check "   Python / ml.train logistic" "${PY_LOG_RATIO}x" "$PY_LOG_RATIO" ">=" 10
row "   Python pull alone (info)" "$(fig "$PY_PULL_MS" ms)" "(info)" "-"
check "   hold-out R^2 vs Python, % apart" "${R2_DIFF}% (${ML_R2:-?} / $PY_R2)" "$R2_DIFF" "<=" 1
check "   hold-out accuracy vs Python, % apart" "${ACC_DIFF}% (${ML_ACC:-?} / $PY_ACC)" "$ACC_DIFF" "<=" 1
row "   Python xgboost, end to end" "$(fig "$PY_XGB_MS" ms)" "-" "-"
row "   ml.train xgboost, test_size 0.25" "$(fig "$XGBS_MS" ms)" "-" "-"
check "   Python / ml.train xgboost" "${PY_XGB_RATIO}x" "$PY_XGB_RATIO" ">=" 1.5
check "   xgboost hold-out R^2 vs Python, % apart" "${XR2_DIFF}% ($ML_XR2 / $PY_XR2)" "$XR2_DIFF" "<=" 1
row "12. ml.train linear, default, $S1 rows" "$(fig "$SC_DEF_1" ms)" "-" "-"
row "    default, $S2 rows" "$(fig "$SC_DEF_2" ms)" "-" "-"
row "    default, $S3 rows" "$(fig "$SC_DEF_3" ms)" "-" "-"
row "    default, per row at $S3 / at $S2 (info)" "${SC_DEF_GROWTH}x" "(info)" "-"
row "    aggregate path, $S1 rows" "$(fig "$SC_AGG_1" ms)" "-" "-"
row "    aggregate path, $S2 rows" "$(fig "$SC_AGG_2" ms)" "-" "-"
row "    aggregate path, $S3 rows" "$(fig "$SC_AGG_3" ms)" "-" "-"
check "    aggregate, per row at $S3 / at $S2" "${SC_AGG_GROWTH}x" "$SC_AGG_GROWTH" "<=" 1.25
row "    memory, default: $S1 / $S2 / $S3" "${SC_MEM_DEFAULT_1:-?} / ${SC_MEM_DEFAULT_2:-?} / ${SC_MEM_DEFAULT_3:-?} MB" "(info)" "-"
row "    memory, aggregate: $S1 / $S2 / $S3" "${SC_MEM_AGG_1:-?} / ${SC_MEM_AGG_2:-?} / ${SC_MEM_AGG_3:-?} MB" "(info)" "-"
check "    memory, aggregate, $S3 / $S2 rows" "${SC_MEM_GROWTH}x" "$SC_MEM_GROWTH" "<=" 1.25
row "13. CREATE TABLE AS SELECT id, ml.predict" "$(fig "$BATCH_CTAS_MS" ms)" "-" "-"
check "    ml.batch_predict, 1 worker: CTAS / it" "$(fig "$BATCH_1_MS" ms "$BATCH_RATIO")" "$BATCH_RATIO" ">=" 0.70
check "    2 workers: 1 worker / 2 workers" "$(fig "$BATCH_2_MS" ms "$BATCH_SPEEDUP")" "$BATCH_SPEEDUP" ">=" 1.5
summary_14
summary_15
summary_16
summary_17
summary_18
}

echo
TOOK=$(took)
say "summary ($ROWS rows x $NFEAT features; medians; $(($(date +%s) - T_START)) s in all)"
{
    summary
    echo
    echo "make bench took $TOOK"
} >"$WORK/summary.txt"
cat "$WORK/summary.txt"
{
    echo "# make bench: results"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $COMMIT; $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), PostgreSQL $PG_VERSION_STR, shared_buffers $SHARED_BUFFERS, jit $JIT; $ROWS rows x $NFEAT float8 features; medians of alternating runs. Produced by \`make bench\` (test/bench/run.sh), which describes each figure."
    echo
    echo '```'
    cat "$WORK/summary.txt"
    echo '```'
} >"$BENCH_DIR/results.md"
echo "== written to test/bench/results.md"
if [[ $LOAD_BAD -ne 0 || $MON_BAD -ne 0 ]]; then
    exit 1
fi
if [[ $MISSED -ne 0 && $STRICT == 1 ]]; then
    exit 1
fi
exit 0
