#!/usr/bin/env python3
"""test/smith/run.py: random SQL against every ml function, counting crashes.

sqlsmith (Debian's package) generates random queries from the schema of a
database that has pgmaker installed and a few trained projects, bandits and
labeling jobs (scripts/smith.sh prepares it).  sqlsmith cannot be told to
use only some functions, so this script asks it for queries in dry-run
mode, batch after batch with successive seeds, keeps those that call an ml
function, and runs each one in its own transaction with a statement
timeout.  Errors are expected and fine; a crash is a backend that dies on a
signal, which the server log tells apart from an ordinary error.  After a
crash the server restarts by itself; the script reconnects and goes on,
and keeps each crashing query in the output directory.

Usage: run.py --conninfo CONNINFO --log SERVER_LOG --queries N --out DIR
Prints one line of figures and exits 1 when any query crashed a backend.
"""

import argparse
import os
import re
import subprocess
import sys
import time

import psycopg2

ML_CALL = re.compile(r"\bml\.([a-z_0-9]+)\(")
# Functions that end sessions, signal or reconfigure the server, or touch
# files: a query calling them measures nothing about pgmaker.
DENY = re.compile(
    r"\bpg_catalog\.(pg_terminate_backend|pg_cancel_backend|pg_reload_conf|pg_rotate_logfile"
    r"|pg_promote|pg_switch_wal|pg_create_restore_point|pg_log_backend_memory_contexts"
    r"|pg_read_file|pg_read_binary_file|pg_ls_\w+|pg_stat_file|lo_\w+|pg_file_\w+"
    r"|pg_replication_origin_\w+|pg_drop_replication_slot|pg_create_\w+_replication_slot"
    r"|pg_logical_\w+|pg_backup_\w+|pg_start_backup|pg_stop_backup|pg_sleep\w*"
    r"|set_config|pg_advisory\w*|pg_try_advisory\w*|txid_\w+|pg_import_system_collations"
    r"|pg_notify|pg_wal_replay_\w+)\(")
# a backend or a background worker (a job worker, the launcher) that died
CRASH = re.compile(r"\(PID (\d+)\) (?:was terminated by signal (\d+)|exited with exit code ([2-9]|\d\d+))")


def generate(target, seed, count):
    """One dry-run batch of sqlsmith queries."""
    out = subprocess.run(
        ["sqlsmith", "--target=" + target, "--dry-run", "--seed=%d" % seed,
         "--max-queries=%d" % count],
        capture_output=True, text=True, check=False)
    return [q.strip() for q in out.stdout.split(";\n") if q.strip()]


def crashes_in_log(path, offset):
    """(pid, signal or exit code) of each process the log says died since offset."""
    with open(path, "r", errors="replace") as f:
        f.seek(offset)
        text = f.read()
        return [(m[0], m[1] or "exit " + m[2]) for m in CRASH.findall(text)], f.tell()


def wait_for_verdict(path, offset, pid):
    """After a lost session: poll the log (up to 30 s) until it says whether
    the backend of pid died, or the server restarted after another's death."""
    found = []
    for _ in range(300):
        more, offset = crashes_in_log(path, offset)
        found += more
        if any(p == str(pid) for p, _ in found):
            break
        with open(path, "r", errors="replace") as f:
            f.seek(max(0, offset - 4096))
            if "all server processes terminated; reinitializing" in f.read():
                break
        time.sleep(0.1)
    return found, offset


def connect(conninfo):
    for _ in range(60):
        try:
            conn = psycopg2.connect(conninfo)
            conn.autocommit = False
            with conn.cursor() as cur:
                cur.execute("SET statement_timeout = '2s'; SET lock_timeout = '1s'")
            conn.commit()
            return conn
        except psycopg2.OperationalError:
            time.sleep(1)
    sys.exit("smith: the server did not come back")


class Runner:
    """Runs statements one at a time, each in its own rolled-back
    transaction, and counts what happened: succeeded, errors (an ordinary
    error, a statement timeout, or a session that ended without a crash)
    and crashes (a process the server log says died since the last
    statement).  A crashing statement is kept in out as PREFIX-N.sql, and
    the session is opened again after any lost one."""

    def __init__(self, conninfo, log, out, prefix):
        self.conninfo, self.log, self.out, self.prefix = conninfo, log, out, prefix
        self.succeeded = self.errors = self.crashes = 0
        self.log_offset = os.path.getsize(log)
        self.conn = connect(conninfo)

    def run(self, q):
        lost = False
        pid = self.conn.get_backend_pid()
        try:
            with self.conn.cursor() as cur:
                cur.execute(q)
            self.conn.rollback()
            self.succeeded += 1
        except psycopg2.Error:
            # an error (a statement timeout too), or the session is gone
            if self.conn.closed:
                lost = True
            else:
                self.errors += 1
                try:
                    self.conn.rollback()
                except psycopg2.Error:
                    lost = True
        found, self.log_offset = crashes_in_log(self.log, self.log_offset)
        if lost:
            more, self.log_offset = wait_for_verdict(self.log, self.log_offset, pid)
            found += more
        if found or lost:
            if found:
                self.crashes += 1
                with open(os.path.join(self.out, "%s-%d.sql" % (self.prefix, self.crashes)), "w") as f:
                    f.write("-- process %s died (%s); this session's backend was %d\n%s;\n"
                            % (found[0][0], found[0][1], pid, q))
            else:
                self.errors += 1  # the session ended without a crash
            try:
                self.conn.close()
            except psycopg2.Error:
                pass
            self.conn = connect(self.conninfo)

    def close(self):
        self.conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conninfo", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    ran = generated = 0
    functions = set()
    seed = args.seed
    runner = Runner(args.conninfo, args.log, args.out, "crash")
    started = time.time()
    while ran < args.queries:
        batch = generate(args.conninfo, seed, 2000)
        seed += 1
        generated += len(batch)
        if not batch:
            sys.exit("smith: sqlsmith generated nothing (seed %d)" % (seed - 1))
        for q in batch:
            if ran >= args.queries:
                break
            called = ML_CALL.findall(q)
            if not called or DENY.search(q):
                continue
            ran += 1
            functions.update(called)
            runner.run(q)
    runner.close()
    print("smith: %d queries generated, %d run (calling %d distinct ml functions), "
          "%d errors, %d crashes, %.0f s"
          % (generated, ran, len(functions), runner.errors, runner.crashes, time.time() - started))
    with open(os.path.join(args.out, "functions.txt"), "w") as f:
        f.write("\n".join(sorted(functions)) + "\n")
    sys.exit(1 if runner.crashes else 0)


if __name__ == "__main__":
    main()
