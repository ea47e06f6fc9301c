"""What `docker __complete spy ...` offers; the containers come from a stand-in list."""

from __future__ import annotations

import io

from plugin import completion

NAMES = ["api", "db", "web"]


def offer(*words: str) -> tuple[list[str], int]:
    *before, current = words
    return completion.candidates(before, current, lambda: NAMES)


def test_containers_and_commands_come_first() -> None:
    found, directive = offer("")
    assert found[:3] == NAMES and "version" in found and "diff" in found
    assert directive == completion.NO_FILES


def test_containers_filter_by_prefix_and_are_offered_once() -> None:
    assert offer("w")[0] == ["web"]
    assert offer("web", "")[0] == ["api", "db"]  # no commands after a container
    assert offer("web", "-d", "5s", "")[0] == ["api", "db"]


def test_flag_values_with_a_fixed_set() -> None:
    assert offer("web", "--format", "")[0] == ["table", "json", "csv"]
    assert offer("web", "--sort", "e")[0] == ["errors"]
    assert offer("web", "--audit-profile", "")[0] == ["default"]
    assert offer("web", "--audit-profile", "")[1] == completion.DEFAULT  # files too
    keys, directive = offer("-f", "la")
    assert keys == ["label="] and directive & completion.NO_SPACE


def test_flags() -> None:
    found, _ = offer("web", "--by")
    assert found == ["--by-class", "--by-process"]
    assert offer("web", "--by-p")[0] == ["--by-process"]
    assert "--interval" in offer("--")[0] and "--filter" in offer("--")[0]


def test_files_where_a_file_goes() -> None:
    assert offer("web", "--seccomp-profile", "") == ([], completion.DEFAULT)
    assert offer("diff", "") == ([], completion.DEFAULT)


def test_the_protocol_ends_with_the_directive() -> None:
    from plugin.daemon import GlobalOptions

    out = io.StringIO()
    # An engine that cannot answer: no names, no error in the shell's output.
    completion.complete(GlobalOptions(hosts=("unix:///nonexistent.sock",)),
                        ["spy", "web", "--format", "j"], out)
    assert out.getvalue() == "json\n:4\n"
    out = io.StringIO()
    completion.complete(GlobalOptions(hosts=("unix:///nonexistent.sock",)), ["spy", "z"], out)
    assert out.getvalue() == ":4\n"
