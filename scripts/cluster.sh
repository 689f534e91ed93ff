#!/usr/bin/env bash
# scripts/cluster.sh: create, use and remove a private, throwaway PostgreSQL
# cluster for pgmaker's tests and demo. It never touches a system cluster:
# no pg_ctlcluster, never port 5432, and the server listens only on a unix
# socket inside its own directory.
#
# Usage:
#   scripts/cluster.sh start [DIR]   initdb + start a cluster in DIR (default:
#                                    a new /tmp/pgmaker-cluster.XXXXXX), create
#                                    the test database, write DIR/env, and print
#                                    DIR as the last line on stdout
#   scripts/cluster.sh stop DIR      stop the cluster (fast) and remove DIR
#   scripts/cluster.sh status DIR    pg_ctl status for the cluster in DIR
#   scripts/cluster.sh psql DIR ...  run psql against the cluster in DIR
#
# Layout of DIR: data/ (PGDATA), sock/ (socket directory), postgres.log,
# env (`export PGHOST=... PGPORT=... PGUSER=postgres PGDATABASE=...`).
# The cluster superuser is `postgres`, authentication is trust, locale C,
# encoding UTF8, time zone UTC, fsync off.
#
# Environment:
#   PGMAKER_PRELOAD  shared_preload_libraries value (default: pgmaker);
#                    set it to an empty string to preload nothing
#   PGMAKER_DB       database created after start (default: pgmaker_test), whose
#                    jobs pgmaker's background workers run (ml.database)
#   PG_CONFIG        pg_config to use (default: pg_config on PATH)
#
# When run as root, the server runs as the `postgres` OS user (created if
# missing), since PostgreSQL refuses to run as root.
set -euo pipefail

PROG=${0##*/}
PG_CONFIG=${PG_CONFIG:-pg_config}
PRELOAD=${PGMAKER_PRELOAD-pgmaker}
DBNAME=${PGMAKER_DB:-pgmaker_test}
MARKER=.pgmaker-cluster
OS_USER=postgres

die() { echo "$PROG: $*" >&2; exit 1; }
info() { echo "$PROG: $*" >&2; }

usage() {
    sed -n '/^# Usage:/,/^#$/p' "$0" | sed -e 's/^# \{0,1\}//' >&2
    exit 2
}

command -v "$PG_CONFIG" >/dev/null 2>&1 || die "pg_config not found (run scripts/deps.sh)"
BINDIR=$("$PG_CONFIG" --bindir)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
[[ -x $BINDIR/initdb && -x $BINDIR/pg_ctl ]] ||
    die "initdb/pg_ctl not found in $BINDIR (run scripts/deps.sh)"

AS_ROOT=0
[[ $(id -u) -eq 0 ]] && AS_ROOT=1

# Run a server-side command (initdb, pg_ctl) as the cluster owner, from /
# so that an unreadable current directory does not matter.
as_owner() {
    if [[ $AS_ROOT -eq 1 ]]; then
        (cd / && runuser -u "$OS_USER" -- "$@")
    else
        "$@"
    fi
}

ensure_os_user() {
    [[ $AS_ROOT -eq 1 ]] || return 0
    if ! id -u "$OS_USER" >/dev/null 2>&1; then
        info "creating system user $OS_USER"
        useradd --system --user-group --home-dir /var/lib/postgresql \
            --shell /bin/bash "$OS_USER"
    fi
}

port_in_use() {
    local port=$1 d
    for d in /var/run/postgresql /run/postgresql /tmp; do
        [[ -e $d/.s.PGSQL.$port ]] && return 0
    done
    # A successful connect means something is listening there.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        return 0
    fi
    return 1
}

find_free_port() {
    local base=$((54320 + RANDOM % 2000)) i port
    for ((i = 0; i < 500; i++)); do
        port=$((base + i))
        [[ $port -eq 5432 ]] && continue
        port_in_use "$port" || { echo "$port"; return 0; }
    done
    die "no free port found between $base and $((base + 499))"
}

# Fail early, with a clear hint, when a preloaded library is not installed.
check_preload() {
    local lib name libs
    [[ -n $PRELOAD ]] || return 0
    IFS=',' read -r -a libs <<<"$PRELOAD"
    for lib in "${libs[@]}"; do
        name=${lib//[[:space:]\'\"]/}
        name=${name#\$libdir/}
        [[ -n $name && $name != */* ]] || continue
        if [[ ! -e $PKGLIBDIR/$name.so && ! -e $PKGLIBDIR/$name ]]; then
            die "shared library '$name' is not installed in $PKGLIBDIR" \
                "(run 'make install', or set PGMAKER_PRELOAD='' to start without it)"
        fi
    done
}

check_dir() {
    local dir=$1
    [[ -n $dir ]] || usage
    [[ -d $dir && -e $dir/$MARKER ]] ||
        die "$dir is not a cluster directory made by $PROG"
}

# Cleanup for a start that did not finish: stop the server if it came up and
# remove the directory if this script created it.
START_DIR=""
START_CREATED=0
START_OK=0
start_cleanup() {
    [[ $START_OK -eq 0 && -n $START_DIR ]] || return 0
    if [[ -f $START_DIR/data/postmaster.pid ]]; then
        as_owner "$BINDIR/pg_ctl" -D "$START_DIR/data" -m immediate -w -s stop \
            >/dev/null 2>&1 || true
    fi
    if [[ $START_CREATED -eq 1 && -e $START_DIR/$MARKER ]]; then
        rm -rf "$START_DIR"
    fi
    echo "$PROG: start failed" >&2
}

cmd_start() {
    local dir=${1:-} port sockdir pgdata log
    check_preload
    ensure_os_user

    if [[ -z $dir ]]; then
        dir=$(mktemp -d /tmp/pgmaker-cluster.XXXXXX)
        START_CREATED=1
    elif [[ -e $dir ]]; then
        [[ -d $dir ]] || die "$dir exists and is not a directory"
        [[ -z $(ls -A "$dir") ]] || die "$dir is not empty"
    else
        mkdir -p "$dir"
        START_CREATED=1
    fi
    dir=$(cd "$dir" && pwd -P)
    START_DIR=$dir
    trap start_cleanup EXIT

    touch "$dir/$MARKER"
    pgdata=$dir/data
    sockdir=$dir/sock
    log=$dir/postgres.log
    # Unix socket paths are limited to 107 bytes.
    [[ ${#sockdir} -le 90 ]] ||
        die "socket directory path is too long for a unix socket: $sockdir"
    mkdir -p "$sockdir"
    chmod 0755 "$dir"

    if [[ $AS_ROOT -eq 1 ]]; then
        chown -R "$OS_USER:" "$dir"
        runuser -u "$OS_USER" -- test -w "$dir" ||
            die "$dir (or one of its parents) is not accessible to the $OS_USER user"
    fi

    info "initdb in $pgdata"
    if ! as_owner "$BINDIR/initdb" -D "$pgdata" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        die "initdb failed"
    fi

    port=$(find_free_port)
    cat >>"$pgdata/postgresql.conf" <<CONF

# Private pgmaker test cluster
port = $port
listen_addresses = ''
unix_socket_directories = '$sockdir'
shared_preload_libraries = '$PRELOAD'
# pgmaker's background workers run the jobs of the cluster's database
ml.database = '$DBNAME'
fsync = off
synchronous_commit = off
full_page_writes = off
timezone = 'UTC'
log_timezone = 'UTC'
datestyle = 'iso, mdy'
lc_messages = 'C'
CONF

    info "starting server on port $port (socket in $sockdir)"
    if ! as_owner "$BINDIR/pg_ctl" -D "$pgdata" -l "$log" -w -t 60 -s start; then
        echo "---- $log (last 40 lines) ----" >&2
        tail -n 40 "$log" >&2 || true
        die "server did not start"
    fi

    PGHOST=$sockdir PGPORT=$port PGUSER=postgres \
        "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d postgres \
        -c "CREATE DATABASE \"$DBNAME\"" </dev/null >/dev/null ||
        die "could not create database $DBNAME"

    printf 'export PGHOST=%q PGPORT=%q PGUSER=postgres PGDATABASE=%q\n' \
        "$sockdir" "$port" "$DBNAME" >"$dir/env"
    chmod 0644 "$dir/env"

    START_OK=1
    info "cluster ready: database $DBNAME; source $dir/env to use it"
    echo "$dir"
}

cmd_stop() {
    local dir=${1:-}
    check_dir "$dir"
    dir=$(cd "$dir" && pwd -P)
    if [[ -f $dir/data/postmaster.pid ]]; then
        if ! as_owner "$BINDIR/pg_ctl" -D "$dir/data" -m fast -w -t 60 -s stop; then
            info "fast shutdown failed; trying immediate"
            as_owner "$BINDIR/pg_ctl" -D "$dir/data" -m immediate -w -s stop || true
        fi
    fi
    rm -rf "$dir"
    info "stopped and removed $dir"
}

cmd_status() {
    local dir=${1:-}
    check_dir "$dir"
    as_owner "$BINDIR/pg_ctl" -D "$dir/data" status
}

cmd_psql() {
    local dir=${1:-}
    check_dir "$dir"
    shift
    # shellcheck disable=SC1091
    source "$dir/env"
    exec "$BINDIR/psql" -X "$@"
}

[[ $# -ge 1 ]] || usage
action=$1
shift
case $action in
    start) [[ $# -le 1 ]] || usage; cmd_start "$@" ;;
    stop) [[ $# -eq 1 ]] || usage; cmd_stop "$1" ;;
    status) [[ $# -eq 1 ]] || usage; cmd_status "$1" ;;
    psql) [[ $# -ge 1 ]] || usage; cmd_psql "$@" ;;
    *) usage ;;
esac
