#!/usr/bin/env bash
# A second Docker engine on this machine that sees another cgroup layout than the host's, for
# the layout tests (tests/e2e/test_layouts.py), or by hand:
#   bash tests/e2e/layout-engine.sh start host|v2|v1 NAME    prints the engine's DOCKER_HOST
#   bash tests/e2e/layout-engine.sh stop NAME
# host: the host's cgroup layout, only another engine (for a swarm of engines on one machine).
# v2: dockerd in a private mount namespace where the host's cgroup2 is bound over
#     /sys/fs/cgroup: a cgroup-v2-only engine ("Cgroup Version: 2"), as most distributions run.
# v1: dockerd in a private mount namespace where cgroup2 is unmounted and perf_event is mounted
#     as a v1 hierarchy: an engine that sees no cgroup2 at all. Moving perf_event to v1 takes it
#     from cgroup2 for the whole kernel until `stop` (which removes the hierarchy's cgroups, so
#     that it goes away with the namespace): run nothing that needs perf on cgroup2 meanwhile.
# Each runs in a network namespace of its own (ip netns; SPY_NETNS=NAME shares one, for the
# nodes of a Swarm on one machine), with its loopback up, no bridge and no iptables, so that
# the host's engine and network are not touched, and in a UTS namespace with NAME as its host
# name (a Swarm names its nodes so). Needs root, iproute2, util-linux.
set -euo pipefail
action=$1
name=${3:-${2:-}}
root=/run/spy-layout-$name
data=/var/lib/spy-layout-$name
sock=unix://$root/docker.sock
netns=${SPY_NETNS:-spy-$name}

stop() {
    if [ -f "$root/docker.pid" ] && kill -0 "$(cat "$root/docker.pid")" 2>/dev/null; then
        local pid
        pid=$(cat "$root/docker.pid")
        ids=$(docker -H "$sock" ps -aq 2>/dev/null || true)
        [ -z "$ids" ] || docker -H "$sock" rm -f $ids >/dev/null 2>&1 || true
        # Empty the v1 perf_event hierarchy so that it is destroyed with the namespace.
        nsenter -t "$pid" -m sh -c 'for d in /sys/fs/cgroup/perf_event/*/; do rmdir "$d" 2>/dev/null; done; true'
        kill "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rmdir /sys/fs/cgroup/perf_event 2>/dev/null || true
    [ -n "${SPY_NETNS:-}" ] || ip netns del "$netns" 2>/dev/null || true
    rm -rf "$data"  # an engine of the tests: the next start begins afresh (no old swarm)
    rm -rf "$root" 2>/dev/null || true  # its exec root and socket: nothing left in /run
    give_back_perf_event
}

# A v1 hierarchy outlives its last mount while it has child cgroups, dying ones too (a perf
# event on a container's cgroup keeps it so for a while after the container is gone), and
# perf_event stays bound to it, away from cgroup2. Mount it again, remove what is left, and
# unmount it with no child: then the kernel destroys it and perf_event is cgroup2's again. The
# kernel destroys it a moment after the unmount, not at once: a mount made meanwhile makes a
# new hierarchy, which binds perf_event again (a loop that mounted again every 0.5 s kept it
# on v1 for as long as it ran: 3 min). So each unmount is given 5 s to take effect.
give_back_perf_event() {
    grep -q ':perf_event:' /proc/self/cgroup || return 0
    local mnt start=$SECONDS
    mnt=$(mktemp -d)
    while [ $((SECONDS - start)) -lt 180 ]; do  # a perf killed with its container closes its events first
        mount -t cgroup -o perf_event cgroup "$mnt" || break
        find "$mnt" -mindepth 1 -type d | sort -r | xargs -r rmdir 2>/dev/null || true
        local left
        left=$(find "$mnt" -mindepth 1 -type d | wc -l)
        umount "$mnt"
        for _ in $(seq 1 50); do
            grep -q ':perf_event:' /proc/self/cgroup || { rmdir "$mnt"; return 0; }
            sleep 0.1
        done
        echo "layout-engine: perf_event still on cgroup v1 after $((SECONDS - start)) s ($left cgroups left in it)" >&2
    done
    rmdir "$mnt"
    echo "layout-engine: perf_event is still on a cgroup v1 hierarchy" >&2
    return 1
}

case $action in
start)
    kind=$2
    stop || true  # what an earlier run left: its perf_event may be held for a while yet
    mkdir -p "$root" "$data"
    ip netns list | grep -qw "$netns" || ip netns add "$netns"
    ip netns exec "$netns" ip link set lo up
    case $kind in
    host) setup=true ;;
    v2) setup='mount --bind /sys/fs/cgroup/unified /sys/fs/cgroup' ;;
    v1) setup='umount /sys/fs/cgroup/unified && mkdir -p /sys/fs/cgroup/perf_event && mount -t cgroup -o perf_event cgroup /sys/fs/cgroup/perf_event' ;;
    *) echo "layout-engine: host, v2 or v1, not $kind" >&2; exit 2 ;;
    esac
    # setsid: the engine outlives this script; the shell execs it in the new namespaces.
    setsid unshare -m -u --propagation private -- sh -c "$setup && hostname $name && exec nsenter --net=/var/run/netns/$netns \
        dockerd -H $sock --data-root $data --exec-root $root/exec --pidfile $root/docker.pid \
        --bridge none --iptables=false --ip-masq=false" > "$root/dockerd.log" 2>&1 < /dev/null &
    for _ in $(seq 1 60); do
        docker -H "$sock" info >/dev/null 2>&1 && { echo "$sock"; exit 0; }
        sleep 1
    done
    tail -20 "$root/dockerd.log" >&2
    exit 1
    ;;
stop) stop ;;
*) echo "usage: layout-engine.sh start host|v2|v1 NAME | stop NAME" >&2; exit 2 ;;
esac
