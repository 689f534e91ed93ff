#!/usr/bin/env bash
# scripts/valgrind.sh: `make valgrind`: pgmaker's regression suites on a
# server running under valgrind's memcheck.  Every backend is followed
# (postgres forks without exec); each process writes its own log.  An error
# counts against pgmaker when one of the first frames of its stack is in
# pgmaker's code (pgmaker.so, or its sources with the debug info): invalid
# reads or writes, uses of uninitialised values, invalid frees; so does a
# process that dies on a signal, a crash in the server log, or a pg_regress
# run that did not complete.  Errors with
# no pgmaker frame (the server's own, libc's, OpenBLAS's) are counted and
# shown apart; Debian's server is built without PostgreSQL's valgrind
# client requests, so memcheck cannot see pfree'd memory that a memory
# context keeps for reuse, only what goes back to malloc.
#
# Prints the suites run and the error counts; fails when pgmaker has any.
#
# Environment:
#   VALGRIND_SUITES   suites to run (default: every REGRESS suite but
#                     autopilot and bandit, whose long simulations take
#                     hours under valgrind; setup always runs first)
#   VALGRIND_TIMEOUT  seconds for the pg_regress run (default 5400)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v valgrind >/dev/null 2>&1 || { echo "valgrind: valgrind not found; run make deps" >&2; exit 1; }
BINDIR=$(pg_config --bindir)
PGXS_DIR=$(dirname "$(pg_config --pgxs)")
TIMEOUT=${VALGRIND_TIMEOUT:-5400}
ALL=$(sed -n "s/^REGRESS = //p" Makefile)
SUITES=${VALGRIND_SUITES:-$(tr ' ' '\n' <<<"$ALL" | grep -v -x -E 'setup|autopilot|bandit' | paste -s -d ' ')}

make -s
make -s install >/dev/null

CLUSTER=""
cleanup() { [[ -z $CLUSTER ]] || scripts/cluster.sh stop "$CLUSTER" >/dev/null 2>&1 || true; }
trap cleanup EXIT

as_owner() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# a private cluster (pgmaker preloaded: the launcher runs under valgrind
# too), stopped and started again under valgrind
CLUSTER=$(PGMAKER_PRELOAD=pgmaker scripts/cluster.sh start | tail -n 1)
# shellcheck disable=SC1091
source "$CLUSTER/env"
as_owner "$BINDIR/pg_ctl" -D "$CLUSTER/data" -m fast -w -s stop
LOGS=$CLUSTER/valgrind
mkdir -p "$LOGS"
cat >"$CLUSTER/postgres-valgrind" <<WRAP
#!/bin/sh
exec valgrind --quiet --trace-children=yes --track-origins=yes --read-var-info=no \\
    --num-callers=40 --error-limit=no --leak-check=no --child-silent-after-fork=no --fullpath-after= \\
    --log-file=$LOGS/%p.log "$BINDIR/postgres" "\$@"
WRAP
chmod 0755 "$CLUSTER/postgres-valgrind"
[[ $(id -u) -ne 0 ]] || chown -R postgres: "$CLUSTER"
cat >>"$CLUSTER/data/postgresql.conf" <<CONF
# under valgrind: one thread per library
ml.threads = 1
CONF
echo "== server under valgrind; suites: setup $SUITES"
as_owner "$BINDIR/pg_ctl" -D "$CLUSTER/data" -p "$CLUSTER/postgres-valgrind" -l "$CLUSTER/postgres.log" \
    -w -t 600 -s start

started=$(date +%s)
regress_rc=0
# shellcheck disable=SC2086
timeout "$TIMEOUT" "$PGXS_DIR/../test/regress/pg_regress" --bindir="$BINDIR" --inputdir=. \
    --host="$PGHOST" --port="$PGPORT" --user=postgres --dbname=pgmaker_regress \
    --load-extension=pgmaker --outputdir="$CLUSTER/regress" setup $SUITES >"$CLUSTER/regress.out" 2>&1 ||
    regress_rc=$?
grep -E '^(test|ok|not ok) ' "$CLUSTER/regress.out" || true
if [[ -s $CLUSTER/regress/regression.diffs ]]; then
    cp "$CLUSTER/regress/regression.diffs" /tmp/pgmaker-valgrind.diffs
    echo "== output differences: /tmp/pgmaker-valgrind.diffs"
fi
as_owner "$BINDIR/pg_ctl" -D "$CLUSTER/data" -m fast -w -t 600 -s stop || true

# one error block per "==PID== " run of lines between blank ones, the first
# line naming the kind
rc=0
/usr/bin/python3 - "$LOGS" "$PWD/src/" <<'PY' || rc=$?
import glob, re, sys, collections
# A frame is pgmaker's when it names pgmaker.so (no debug info) or, with
# the debug info the build has, one of the sources under src/ (valgrind
# prints full paths: --fullpath-after=).  An error is pgmaker's when one of
# the first frames of its stack is: pgmaker's code made the bad access or
# the call that made it.  A pgmaker frame further down (a background
# worker's entry point under the server's start-up code) or only in the
# origin of uninitialised bytes (memory the server allocated while pgmaker
# built a value) is shown apart.
TOP = 4
def ours_frame(line):
    return "pgmaker.so" in line or sys.argv[2] in line
def error_frames(block):
    frames = []
    for b in block[1:]:
        if not re.match(r"\s*(at|by) 0x", b):
            break           # "Address ...", "Uninitialised value was created ..."
        frames.append(b)
    return frames
nearby = collections.Counter()
crashes = 0
ours = collections.Counter()
theirs = collections.Counter()
theirs_first = {}
shown = 0
for path in sorted(glob.glob(sys.argv[1] + "/*.log")):
    block = []
    for line in open(path, errors="replace").read().splitlines() + [""]:
        text = re.sub(r"^==\d+== ?", "", line)
        if text.strip():
            block.append(text)
            continue
        if block and block[0].startswith("Process terminating with default action of signal"):
            crashes += 1
            print("---- a process died on a signal (%s) ----" % path)
            print("\n".join(block[:25]))
        elif block and re.match(r"(Invalid|Conditional jump|Use of uninitialised|Syscall param|Mismatched free|Source and destination|Argument)", block[0]):
            kind = re.sub(r"\d+", "N", block[0])
            frames = error_frames(block)
            if any(ours_frame(b) for b in frames[:TOP]):
                ours[kind] += 1
                if shown < 5:
                    print("---- pgmaker error (%s) ----" % path)
                    print("\n".join(block[:25]))
                    shown += 1
            else:
                theirs[kind] += 1
                theirs_first.setdefault(kind, [b.strip() for b in block[1:4]])
                if any(ours_frame(b) for b in block):
                    nearby[kind] += 1
        block = []
print("valgrind: errors with a pgmaker frame: %d%s" % (sum(ours.values()),
      "".join("\n   %d x %s" % (n, k) for k, n in ours.most_common())))
print("valgrind: errors without one (server, libraries; information): %d%s" % (sum(theirs.values()),
      "".join("\n   %d x %s\n      first at: %s" % (n, k, " | ".join(theirs_first[k]))
              for k, n in theirs.most_common(6))))
print("valgrind: of those, with a pgmaker frame deeper down or in the origin of the bytes: %d%s"
      % (sum(nearby.values()), "".join("\n   %d x %s" % (n, k) for k, n in nearby.most_common())))
print("valgrind: processes that died on a signal: %d" % crashes)
sys.exit(1 if ours or crashes else 0)
PY
if grep -q -E 'terminated by signal|was terminated|PANIC' "$CLUSTER/postgres.log"; then
    echo "valgrind: the server log reports a crash:"
    grep -E 'terminated by signal|was terminated|PANIC' "$CLUSTER/postgres.log" | head -5
    rc=1
fi
if [[ $regress_rc -ne 0 && $regress_rc -ne 1 ]]; then
    # 1 is output differences, shown above; anything else is a run that did not happen
    echo "valgrind: pg_regress did not complete (exit status $regress_rc)"
    rc=1
fi
echo "== $(($(date +%s) - started)) s under valgrind; pg_regress exit status $regress_rc (output differences under valgrind are shown, not judged)"
exit $rc
