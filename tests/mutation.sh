#!/usr/bin/env bash
# Mutation testing of the pure modules with mutmut 3 (pip install mutmut): every mutant of
# report, render, diff, seccomp, classes, helper/perf, helper/cgroup and helper/systables, and of
# the pure functions of helper/shards (is_tick, window_end, shard_size, plan) and helper/bpfengine
# (delta, config_bytes, control_bytes), sshdial (parse, ssh_argv), launcher (tracefs_by_volume),
# usage and options (the command line), live (so_far, hidden_by_top, fit), helper/engine
# (agreeing), logs (the level), selection (--syscall), helper/processes and the pure parts of
# --by-process and --syscall in helper/bpfengine (processes_of) and helper/main (by_process,
# selected, wanted, counted_names); pyproject.toml's [tool.mutmut] says which files and tests.
#
#   bash tests/mutation.sh            # all of them; prints the survivors per module
#   bash tests/mutation.sh 'plugin.diff.*'   # only the mutants these mutmut names match
#
# It runs in a copy of the working tree (MUTMUT_DIR, default a new temporary folder), so that
# mutmut's mutants/ never lands in the checkout; give the same MUTMUT_DIR again to reuse its
# results (mutmut reruns only what changed). MUTMUT_CHILDREN (default 2) tests run at once:
# the machine is shared. A whole run takes about an hour on 2 cores.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=${MUTMUT_DIR:-$(mktemp -d /tmp/docker-spy-mutmut.XXXXXX)}
children=${MUTMUT_CHILDREN:-2}
mkdir -p "$work"
# The tracked files and the new ones, as they are in the working tree (uncommitted edits too).
(cd "$repo" && git ls-files -z --cached --others --exclude-standard) |
    (cd "$repo" && xargs -0 cp --parents -t "$work" 2>/dev/null || true)

if [ $# -eq 0 ]; then
    set -- 'plugin.report.*' 'plugin.render.*' 'plugin.diff.*' 'plugin.seccomp.*' 'plugin.classes.*' \
        'plugin.helper.perf.*' 'plugin.helper.cgroup.*' 'plugin.helper.systables.*' \
        'plugin.helper.shards.x_is_tick__*' 'plugin.helper.shards.x_window_end__*' \
        'plugin.helper.shards.x_shard_size__*' 'plugin.helper.shards.x_plan__*' \
        'plugin.helper.bpfengine.x_delta__*' 'plugin.helper.bpfengine.x_config_bytes__*' \
        'plugin.helper.bpfengine.x_control_bytes__*' \
        'plugin.sshdial.x_parse__*' 'plugin.sshdial.x_ssh_argv__*' \
        'plugin.launcher.x_tracefs_by_volume__*' 'plugin.usage.*' 'plugin.options.*' \
        'plugin.live.x_so_far__*' 'plugin.live.x_hidden_by_top__*' 'plugin.live.x_fit__*' \
        'plugin.helper.engine.x_agreeing__*' 'plugin.logs.*' \
        'plugin.selection.*' 'plugin.helper.processes.*' 'plugin.helper.bpfengine.x_processes_of__*' \
        'plugin.helper.main.x_by_process__*' 'plugin.helper.main.x_selected__*' \
        'plugin.helper.main.x_wanted__*' 'plugin.helper.main.x_counted_names__*'
fi

cd "$work"
echo "mutmut in $work" >&2
mutmut run --max-children "$children" "$@" >"$work/mutmut-run.log" 2>&1 || {
    tail -40 "$work/mutmut-run.log" >&2
    exit 1
}
python3 "$repo/tests/mutation_summary.py" "$@"
