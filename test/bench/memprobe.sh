#!/usr/bin/env bash
# test/bench/memprobe.sh: reads the memory figures of one PostgreSQL backend
# from /proc, for the memory part of test/bench/run.sh.  It is called from
# inside the psql session that runs ml.train (through \!), so that the
# snapshots are taken right before and right after the training call.
#
# Usage:
#   memprobe.sh snap PID        print "VmRSS VmHWM RssAnon RssFile RssShmem" (kB)
#   memprobe.sh reset PID       reset the backend's peak RSS (VmHWM) to its
#                               current RSS (writes 5 to /proc/PID/clear_refs);
#                               prints "reset" or "noreset"
#   memprobe.sh poll PID DIR    sample RssAnon and VmRSS every ~5 ms until
#                               DIR/poll.stop exists; touches DIR/poll.ready
#                               after the first sample and writes
#                               "max_RssAnon max_VmRSS samples" to DIR/poll.out
#   memprobe.sh start PID DIR   run "poll" in the background and return once
#                               it has taken its first sample
#   memprobe.sh stop DIR        ask the poller to stop and wait for its result
set -euo pipefail

PROG=${0##*/}
die() { echo "$PROG: $*" >&2; exit 1; }

# Sets the globals vmrss vmhwm anon file shmem from /proc/PID/status.
read_status() {
    local pid=$1 key val _
    vmrss=0 vmhwm=0 anon=0 file=0 shmem=0
    while read -r key val _; do
        case $key in
            VmRSS:) vmrss=$val ;;
            VmHWM:) vmhwm=$val ;;
            RssAnon:) anon=$val ;;
            RssFile:) file=$val ;;
            RssShmem:) shmem=$val ;;
        esac
    done <"/proc/$pid/status"
}

cmd_snap() {
    local pid=${1:?pid}
    read_status "$pid"
    echo "$vmrss $vmhwm $anon $file $shmem"
}

cmd_reset() {
    local pid=${1:?pid}
    if { echo 5 >"/proc/$pid/clear_refs"; } 2>/dev/null; then
        echo reset
    else
        echo noreset
    fi
}

cmd_poll() {
    local pid=${1:?pid} dir=${2:?dir} max_anon=0 max_rss=0 samples=0 fifo
    fifo=$dir/poll.fifo
    # A FIFO nobody writes to: "read -t" on it sleeps without forking.
    mkfifo "$fifo"
    exec 3<>"$fifo"
    while :; do
        [[ -r /proc/$pid/status ]] || break
        read_status "$pid" 2>/dev/null || break
        ((anon > max_anon)) && max_anon=$anon
        ((vmrss > max_rss)) && max_rss=$vmrss
        samples=$((samples + 1))
        [[ $samples -eq 1 ]] && touch "$dir/poll.ready"
        [[ -e $dir/poll.stop ]] && break
        read -r -t 0.005 -u 3 _ || true
    done
    exec 3>&-
    rm -f "$fifo"
    echo "$max_anon $max_rss $samples" >"$dir/poll.out.tmp"
    mv "$dir/poll.out.tmp" "$dir/poll.out"
}

# Waits (up to 10 s) for a file to appear.
wait_for() {
    local f=$1 i
    for ((i = 0; i < 1000; i++)); do
        [[ -e $f ]] && return 0
        sleep 0.01
    done
    die "timed out waiting for $f"
}

[[ $# -ge 1 ]] || die "usage: $PROG snap|reset|poll|stop ..."
action=$1
shift
case $action in
    snap) cmd_snap "$@" ;;
    reset) cmd_reset "$@" ;;
    poll) cmd_poll "$@" ;;
    start)
        # Starts a poller in the background and waits until it has sampled.
        pid=${1:?pid} dir=${2:?dir}
        rm -f "$dir/poll.ready" "$dir/poll.stop" "$dir/poll.out"
        "$0" poll "$pid" "$dir" </dev/null >/dev/null 2>"$dir/poll.err" &
        wait_for "$dir/poll.ready"
        ;;
    stop)
        dir=${1:?dir}
        touch "$dir/poll.stop"
        wait_for "$dir/poll.out"
        ;;
    *) die "unknown action $action" ;;
esac
