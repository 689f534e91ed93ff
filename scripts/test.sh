#!/usr/bin/env bash
# scripts/test.sh: pgmaker's full test run, as invoked by `make test`.
#
# Steps: install missing dependencies (scripts/deps.sh), build, install the
# extension, start a private cluster (scripts/cluster.sh; stopped on exit,
# also on failure), then run four kinds of suites:
#   a. pg_regress: the REGRESS tests from the Makefile (plus its REGRESS_OPTS,
#      e.g. --load-extension), against the private cluster, in a database
#      pgmaker_regress that pg_regress creates; one suite per test
#   b. pgTAP: each test/pgtap/*.sql via pg_prove, database pgmaker_tap (which
#      has the pgtap extension installed); one suite per file
#   c. Perl TAP: each test/t/*.pl via prove, using PostgreSQL::Test::Cluster;
#      these tests make their own clusters; one suite per file
#   d. isolation: each test/isolation/specs/*.spec via pg_isolation_regress
#      (which runs isolationtester), against the private cluster, in a
#      database pgmaker_isolation that it creates with the extension loaded;
#      expected output in test/isolation/expected/, results and
#      regression.diffs in test/isolation/output_iso/; one suite per spec
# The last line printed is `N passed, M failed` (counts of suites). The exit
# status is non-zero if any suite failed or any step before the suites failed.
#
# Perl TAP tests run with the current directory set to a copy of test/ (so
# t/..., data/... resolve), TESTDIR pointing at that copy, and PGMAKER_ROOT
# pointing at the project root. When run as root they run as the `postgres`
# OS user, because initdb refuses to run as root.
#
# Environment:
#   PGMAKER_PRELOAD          shared_preload_libraries of the private cluster
#                            (default: pgmaker; see scripts/cluster.sh)
#   PGMAKER_REGRESS_TIMEOUT  seconds for the whole pg_regress run (default 300)
#   PGMAKER_PGTAP_TIMEOUT    seconds per pgTAP file (default 120)
#   PGMAKER_PERL_TIMEOUT     seconds per Perl TAP file (default 300)
#   PGMAKER_ISOLATION_TIMEOUT seconds for the whole isolation run (default 300)
#   PG_CONFIG                pg_config to use (default: pg_config on PATH)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
exec </dev/null

REGRESS_TIMEOUT=${PGMAKER_REGRESS_TIMEOUT:-300}
PGTAP_TIMEOUT=${PGMAKER_PGTAP_TIMEOUT:-120}
PERL_TIMEOUT=${PGMAKER_PERL_TIMEOUT:-300}
ISOLATION_TIMEOUT=${PGMAKER_ISOLATION_TIMEOUT:-300}
OS_USER=postgres

AS_ROOT=0
SUDO=()
if [[ $(id -u) -eq 0 ]]; then
    AS_ROOT=1
else
    SUDO=(sudo -n)
fi

PASSED=0
FAILED=0
declare -A KIND_PASSED=() KIND_FAILED=()
CLUSTER_DIR=""
SCRATCH=""

banner() { printf '\n==== %s ====\n' "$*"; }
note() { echo "test.sh: $*"; }

summary_line() {
    echo "${PASSED} passed, ${FAILED} failed"
}

# Abort before any suite could run: say why and print the summary line.
setup_failed() {
    echo "test.sh: setup failed: $*" >&2
    summary_line
    exit 1
}

record() { # record KIND passed|failed NAME
    local kind=$1 result=$2 name=$3
    if [[ $result == passed ]]; then
        PASSED=$((PASSED + 1))
        KIND_PASSED[$kind]=$((${KIND_PASSED[$kind]:-0} + 1))
    else
        FAILED=$((FAILED + 1))
        KIND_FAILED[$kind]=$((${KIND_FAILED[$kind]:-0} + 1))
        FAILED_NAMES+=("$kind/$name")
    fi
}
FAILED_NAMES=()

cleanup() {
    local rc=$?
    if [[ -n $CLUSTER_DIR && -d $CLUSTER_DIR ]]; then
        "$ROOT/scripts/cluster.sh" stop "$CLUSTER_DIR" >/dev/null 2>&1 ||
            echo "test.sh: warning: could not stop cluster in $CLUSTER_DIR" >&2
    fi
    if [[ -n $SCRATCH && -d $SCRATCH ]]; then
        stop_stray_servers "$SCRATCH"
        rm -rf "$SCRATCH"
    fi
    exit "$rc"
}

# Stop any server left running under DIR (e.g. a Perl test killed by timeout).
stop_stray_servers() {
    local dir=$1 pidfile pgdata
    while IFS= read -r pidfile; do
        pgdata=$(dirname "$pidfile")
        if [[ $AS_ROOT -eq 1 ]]; then
            runuser -u "$OS_USER" -- "$BINDIR/pg_ctl" -D "$pgdata" -m immediate -s stop \
                >/dev/null 2>&1 || true
        else
            "$BINDIR/pg_ctl" -D "$pgdata" -m immediate -s stop >/dev/null 2>&1 || true
        fi
    done < <(find "$dir" -name postmaster.pid 2>/dev/null)
}

trap cleanup EXIT

# Print the value of a variable from the Makefile (fully expanded by make),
# falling back to reading the assignment from the Makefile text.
makefile_var() {
    local name=$1 value
    # shellcheck disable=SC2016 # $($*) is for make, not the shell
    if value=$(make -s --no-print-directory \
        --eval='pgmaker-print-var-%: ; @printf "%s\n" "$($*)"' \
        "pgmaker-print-var-$name" 2>/dev/null); then
        printf '%s\n' "$value"
        return 0
    fi
    awk -v name="$name" '
        BEGIN { re = "^[ \t]*" name "[ \t]*[:+?]?=" }
        grab { line = line " " $0 }
        !grab && $0 ~ re { sub(re, ""); line = $0; grab = 1 }
        grab { if (line ~ /\\$/) { sub(/\\$/, "", line); next } print line; exit }
    ' Makefile | sed 's/\\$//'
}

# ---------------------------------------------------------------- setup

banner "dependencies"
"$ROOT/scripts/deps.sh" || setup_failed "scripts/deps.sh"

PG_CONFIG=${PG_CONFIG:-$(command -v pg_config || true)}
[[ -n $PG_CONFIG ]] || setup_failed "pg_config not found"
export PG_CONFIG
BINDIR=$("$PG_CONFIG" --bindir)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
PG_REGRESS=$PKGLIBDIR/pgxs/src/test/regress/pg_regress
PG_PERL_LIB=$PKGLIBDIR/pgxs/src/test/perl
PG_ISOLATION_REGRESS=$PKGLIBDIR/pgxs/src/test/isolation/pg_isolation_regress
[[ -x $PG_REGRESS ]] || setup_failed "pg_regress not found at $PG_REGRESS"

banner "build"
make -j"$(nproc)" PG_CONFIG="$PG_CONFIG" || setup_failed "make"

banner "install"
"${SUDO[@]}" make install PG_CONFIG="$PG_CONFIG" || setup_failed "make install"

banner "private cluster"
cluster_out=$("$ROOT/scripts/cluster.sh" start) || setup_failed "scripts/cluster.sh start"
CLUSTER_DIR=$(printf '%s\n' "$cluster_out" | tail -n 1)
[[ -f $CLUSTER_DIR/env ]] || setup_failed "cluster did not write $CLUSTER_DIR/env"
# shellcheck disable=SC1091
source "$CLUSTER_DIR/env"
note "cluster in $CLUSTER_DIR (port $PGPORT)"

SCRATCH=$(mktemp -d /tmp/pgmaker-test.XXXXXX)
chmod 0755 "$SCRATCH"

# record_regress_results KIND TOOL OUT RC DIFFS TIMEOUT TEST...
# Records one suite per TEST from the output OUT of a pg_regress-style TOOL
# (pg_regress, pg_isolation_regress), which prints one line per test:
# "test NAME ... ok|FAILED|failed (ignored)". A test without a line failed.
# On failure it shows the first lines of DIFFS; a run that exited non-zero
# (RC; 124 is the timeout) with no failed test counts as one failed suite,
# so a broken run never counts as all-passed.
record_regress_results() {
    local kind=$1 tool=$2 out=$3 rc=$4 diffs=$5 limit=$6 name status
    shift 6
    declare -A seen=()
    while read -r name status; do
        seen[$name]=$status
    done < <(sed -n -E 's/^(test +)?([^ ]+) +\.\.\. +(ok|FAILED|failed \(ignored\)).*/\2 \3/p' "$out")
    for name in "$@"; do
        case ${seen[$name]:-missing} in
            ok | "failed (ignored)") record "$kind" passed "$name" ;;
            *) record "$kind" failed "$name" ;;
        esac
    done
    if [[ $rc -ne 0 || ${KIND_FAILED[$kind]:-0} -gt 0 ]]; then
        [[ $rc -eq 124 ]] && note "$tool timed out after ${limit}s"
        if [[ -s $diffs ]]; then
            echo "---- $diffs (first 200 lines) ----"
            head -n 200 "$diffs"
            echo "---- end of $diffs ----"
        fi
        if [[ ${KIND_FAILED[$kind]:-0} -eq 0 ]]; then
            note "$tool exited with status $rc"
            record "$kind" failed "$tool"
        fi
    fi
}

# ---------------------------------------------------------------- pg_regress

run_regress() {
    local tests=() raw_opts=() opts=() opt have_inputdir=0 out rc name
    read -r -a tests <<<"$(makefile_var REGRESS)"
    read -r -a raw_opts <<<"$(makefile_var REGRESS_OPTS)"
    banner "pg_regress (${#tests[@]} tests)"
    if [[ ${#tests[@]} -eq 0 ]]; then
        note "no REGRESS tests in the Makefile; skipping"
        return 0
    fi
    for opt in "${raw_opts[@]}"; do
        case $opt in
            --dbname=* | --host=* | --port=* | --user=* | --use-existing | --bindir=*) ;;
            --inputdir=*) have_inputdir=1; opts+=("$opt") ;;
            *) opts+=("$opt") ;;
        esac
    done
    [[ $have_inputdir -eq 1 ]] || opts+=(--inputdir=.)

    rm -f regression.diffs regression.out
    out=$SCRATCH/pg_regress.out
    rc=0
    # No --use-existing: with it pg_regress neither creates the database nor
    # applies --load-extension. Without it, it (re)creates pgmaker_regress and
    # loads the extensions from REGRESS_OPTS, exactly like `make installcheck`.
    timeout --kill-after=10 "$REGRESS_TIMEOUT" "$PG_REGRESS" \
        --bindir="$BINDIR" --host="$PGHOST" --port="$PGPORT" --user=postgres \
        --dbname=pgmaker_regress "${opts[@]}" "${tests[@]}" 2>&1 | tee "$out" || rc=$?

    record_regress_results regress pg_regress "$out" "$rc" regression.diffs \
        "$REGRESS_TIMEOUT" "${tests[@]}"
}

# ---------------------------------------------------------------- pgTAP

run_pgtap() {
    local files=() f rc db=pgmaker_tap
    shopt -s nullglob
    files=(test/pgtap/*.sql)
    shopt -u nullglob
    banner "pgTAP (${#files[@]} files)"
    if [[ ${#files[@]} -eq 0 ]]; then
        note "no test/pgtap/*.sql files; skipping"
        return 0
    fi
    if ! { "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d postgres \
            -c "CREATE DATABASE $db" &&
        "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" \
            -c "CREATE EXTENSION IF NOT EXISTS pgtap"; }; then
        note "could not prepare database $db with pgtap"
        for f in "${files[@]}"; do record pgtap failed "${f##*/}"; done
        return 0
    fi
    for f in "${files[@]}"; do
        rc=0
        timeout --kill-after=10 "$PGTAP_TIMEOUT" pg_prove --nocolor --failures \
            --host "$PGHOST" --port "$PGPORT" --username postgres --dbname "$db" \
            "$f" || rc=$?
        [[ $rc -eq 124 ]] && note "$f timed out after ${PGTAP_TIMEOUT}s"
        if [[ $rc -eq 0 ]]; then
            record pgtap passed "${f##*/}"
        else
            record pgtap failed "${f##*/}"
        fi
    done
}

# ---------------------------------------------------------------- Perl TAP

run_perl() {
    local files=() f rc name tdir runner=() log
    shopt -s nullglob
    files=(test/t/*.pl)
    shopt -u nullglob
    banner "Perl TAP (${#files[@]} files)"
    if [[ ${#files[@]} -eq 0 ]]; then
        note "no test/t/*.pl files; skipping"
        return 0
    fi
    # Work on a copy of test/ that the test user can write to (tmp_check/).
    tdir=$SCRATCH/test
    mkdir -p "$tdir" "$SCRATCH/tmp"
    (cd test && tar --exclude=./tmp_check -cf - .) | (cd "$tdir" && tar -xf -)
    if [[ $AS_ROOT -eq 1 ]]; then
        id -u "$OS_USER" >/dev/null 2>&1 ||
            useradd --system --user-group --home-dir /var/lib/postgresql \
                --shell /bin/bash "$OS_USER"
        chown -R "$OS_USER:" "$tdir" "$SCRATCH/tmp"
        runner=(runuser -u "$OS_USER" --)
    fi
    for f in "${files[@]}"; do
        name=${f##*/}
        rc=0
        (
            cd "$tdir"
            timeout --kill-after=20 "$PERL_TIMEOUT" "${runner[@]}" env \
                -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE \
                HOME="$tdir" \
                TMPDIR="$SCRATCH/tmp" \
                PATH="$BINDIR:$PATH" \
                PERL5LIB="$PG_PERL_LIB${PERL5LIB:+:$PERL5LIB}" \
                PG_REGRESS="$PG_REGRESS" \
                TESTDIR="$tdir" \
                PGMAKER_ROOT="$ROOT" \
                prove --nocolor "t/$name"
        ) || rc=$?
        [[ $rc -eq 124 ]] && note "$f timed out after ${PERL_TIMEOUT}s"
        if [[ $rc -eq 0 ]]; then
            record perl passed "$name"
        else
            record perl failed "$name"
            log=$tdir/tmp_check/log/regress_log_${name%.pl}
            if [[ -f $log ]]; then
                echo "---- $log (last 60 lines) ----"
                tail -n 60 "$log"
                echo "---- end of log ----"
            fi
        fi
    done
    stop_stray_servers "$tdir"
}

# ---------------------------------------------------------------- isolation

run_isolation() {
    local specs=() tests=() f ext outdir out rc name
    shopt -s nullglob
    specs=(test/isolation/specs/*.spec)
    shopt -u nullglob
    banner "isolation (${#specs[@]} specs)"
    if [[ ${#specs[@]} -eq 0 ]]; then
        note "no test/isolation/specs/*.spec files; skipping"
        return 0
    fi
    for f in "${specs[@]}"; do
        name=${f##*/}
        tests+=("${name%.spec}")
    done
    if [[ ! -x $PG_ISOLATION_REGRESS ]]; then
        note "pg_isolation_regress not found at $PG_ISOLATION_REGRESS"
        for name in "${tests[@]}"; do record isolation failed "$name"; done
        return 0
    fi
    ext=$(makefile_var EXTENSION)
    outdir=test/isolation/output_iso
    rm -rf "$outdir"
    mkdir -p "$outdir"
    out=$SCRATCH/pg_isolation_regress.out
    rc=0
    # As for pg_regress: no --use-existing, so the database is (re)created
    # and the extension loaded. isolationtester is found next to
    # pg_isolation_regress; --bindir is where psql is.
    timeout --kill-after=10 "$ISOLATION_TIMEOUT" "$PG_ISOLATION_REGRESS" \
        --bindir="$BINDIR" --host="$PGHOST" --port="$PGPORT" --user=postgres \
        --dbname=pgmaker_isolation --load-extension="${ext:-pgmaker}" \
        --inputdir=test/isolation --outputdir="$outdir" \
        "${tests[@]}" 2>&1 | tee "$out" || rc=$?

    record_regress_results isolation pg_isolation_regress "$out" "$rc" \
        "$outdir/regression.diffs" "$ISOLATION_TIMEOUT" "${tests[@]}"
}

run_regress
run_pgtap
run_perl
run_isolation

banner "summary"
for kind in regress pgtap perl isolation; do
    printf '%-9s %d passed, %d failed\n' "$kind" \
        "${KIND_PASSED[$kind]:-0}" "${KIND_FAILED[$kind]:-0}"
done
if [[ ${#FAILED_NAMES[@]} -gt 0 ]]; then
    echo "failed suites: ${FAILED_NAMES[*]}"
fi
summary_line
[[ $FAILED -eq 0 ]]
