"""The README and docs/ stay true: the test command is CI's, the options are the parser's, every
command shown parses, every relative link lands, and the README stays a front page."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from plugin import cli, usage

REPO = Path(__file__).resolve().parents[2]
README_PATH = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [README_PATH, *DOCS]
README = README_PATH.read_text()
REFERENCE = (REPO / "docs" / "reference.md").read_text()  # the options table lives here
TESTS_DOC = (REPO / "docs" / "tests.md").read_text()
FRONT_PAGE_BYTES = 15 * 1024

FENCE = re.compile(r"^(`{3,})(.*)$")


def _name(page: Path) -> str:
    return str(page.relative_to(REPO))


def _test_command(text: str) -> str:
    tests_section = re.split(r"^#{1,2} Tests$", text, maxsplit=1, flags=re.MULTILINE)[1]
    return re.search(r"```sh\n(.+)\n```", tests_section).group(1)


def test_ci_runs_the_readme_test_command() -> None:
    ci_commands = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
                   if line and not line.startswith("#")]
    assert ci_commands[-1] == _test_command(README)
    assert ci_commands[-1] == _test_command(TESTS_DOC)


def test_quick_start_commands_exist() -> None:
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^(bash \S+)", quick, re.MULTILINE)
    assert commands == ["bash .ci/provision", "bash .ci/run"]
    for command in commands:
        assert (REPO / command.split()[1]).is_file()


def test_every_option_is_documented() -> None:
    for flag in cli.SPY.flags:
        if flag.name in ("help", "version"):
            continue
        spellings = [f"--{flag.name}"] + ([f"-{flag.short}"] if flag.short else [])
        for spelling in spellings:
            assert f"`{spelling}" in REFERENCE or f", {spelling}" in REFERENCE, spelling


def test_the_readme_is_a_front_page() -> None:
    assert len(README.encode()) <= FRONT_PAGE_BYTES, f"README.md is {len(README.encode())} bytes"


def test_every_docs_page_has_a_title_a_way_back_and_a_line_in_the_readme() -> None:
    assert DOCS, "no docs/*.md"
    index = README.split("## Documentation", 1)[1]
    for page in DOCS:
        lines = page.read_text().splitlines()
        assert re.fullmatch(r"# \S.*", lines[0]), f"{_name(page)}: no one-line title"
        assert "](../README.md" in "\n".join(lines[1:4]), f"{_name(page)}: no link back to the README"
        assert f"](docs/{page.name})" in index, f"the README's index lacks {_name(page)}"
    # users look for the platforms: one click from the index
    assert "](docs/platforms.md#where-it-was-run)" in index


# --- the docker spy commands shown ---------------------------------------------------------------


def _code(text: str) -> tuple[list[tuple[str, str]], str]:
    """Fenced blocks as (info string, body), and the prose with every fence removed."""
    blocks, prose, fence, info, body = [], [], None, "", []
    for line in text.splitlines():
        opened = FENCE.match(line.strip())
        if fence is None and opened:
            fence, info, body = opened.group(1), opened.group(2).strip(), []
        elif fence is not None and line.strip().startswith(fence) and not line.strip().strip("`"):
            blocks.append((info, "\n".join(body)))
            fence = None
        elif fence is not None:
            body.append(line)
        else:
            prose.append(line)
    return blocks, "\n".join(prose)


def _shown_command_lines(text: str) -> list[str]:
    """Command lines as a reader would type them: `$ ` lines of console blocks, every line of sh
    blocks, and inline code in the prose."""
    blocks, prose = _code(text)
    lines = []
    for info, body in blocks:
        if info == "console":
            lines += [line[2:] for line in body.splitlines() if line.startswith("$ ")]
        elif info in ("sh", "bash", "shell"):
            lines += body.splitlines()
    lines += re.findall(r"`([^`\n]+)`", prose)
    return lines


def _words(line: str) -> list[str]:
    """Shell words of one command line up to the first |, ;, >, & or comment."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = []
    try:
        for word in lexer:
            if set(word) <= set("();<>|&"):
                break
            words.append(word)
    except ValueError:  # not shell (an unbalanced quote in prose)
        return []
    return words


def _spy_args(words: list[str]) -> list[str] | None:
    """The arguments docker spy would get from this command line, or None for another command.
    `docker [global flags] spy ARGS` (also after `timeout 30`), `docker-spy ARGS`."""
    for i, word in enumerate(words):
        if word in ("docker-spy", "./docker-spy"):
            return cli.split_global(words[i + 1:])[1]
        if word == "docker":
            rest = words[i + 1:]
            args = cli.split_global(rest)[1]
            used = len(rest) - len(args)
            return args if used and rest[used - 1] == cli.PLUGIN_NAME else None
    return None


def _shown_spy_commands() -> list[tuple[str, str, list[str]]]:
    found = []
    for page in PAGES:
        for line in _shown_command_lines(page.read_text()):
            if "[OPTIONS]" in line:
                continue  # a synopsis, not a command
            args = _spy_args(_words(line))
            if args:  # a bare `docker spy` names the command, it is no command line
                found.append((_name(page), line, args))
    return found


SHOWN = _shown_spy_commands()


def test_the_commands_are_found() -> None:
    pages = {page for page, _, _ in SHOWN}
    assert len(SHOWN) >= 30 and {"README.md", "docs/reference.md"} <= pages, SHOWN


def _console_outputs(text: str) -> dict[str, str]:
    """What console blocks show after each `$ ` command line, up to the next one."""
    shown: dict[str, str] = {}
    for info, body in _code(text)[0]:
        if info != "console":
            continue
        command = None
        for line in body.splitlines():
            if line.startswith("$ "):
                command = line[2:]
                shown[command] = ""
            elif command is not None:
                shown[command] += line + "\n"
    return shown


def _read_as_cli_does(args: list[str]) -> None:
    """As cli._dispatch reads a command line, up to running it: raises what it would say."""
    if args[:1] in (["help"], [cli.COMPLETE]):
        return
    name = args[0] if args[0] in cli.SUBCOMMANDS else ""
    command = cli.SUBCOMMANDS[name] if name else cli.SPY
    try:
        values, positional = usage.parse(command, args[1:] if name else args)
    except usage.HelpWanted:
        return
    if name:
        usage.check_args(command, positional)
    elif not values["version"]:
        cli.spy_options(values, positional)


@pytest.mark.parametrize(("page", "line", "args"), SHOWN, ids=[f"{p}: {line}" for p, line, _ in SHOWN])
def test_every_command_shown_parses(page: str, line: str, args: list[str]) -> None:
    # A command shown to be refused is shown with exactly what docker spy says of it.
    try:
        _read_as_cli_does(args)
    except usage.FlagError as e:
        output = _console_outputs((REPO / page).read_text()).get(line)
        assert output is not None, f"{line!r} is refused: {e.line()}"
        assert output.startswith(e.line() + "\n"), (output, e.line())


# --- links between the README and docs/ --------------------------------------------------------


def _anchors(text: str) -> set[str]:
    """The ids GitHub gives the headings: lowercase, punctuation dropped, spaces to -, and -1,
    -2, ... after a repeated one."""
    _, prose = _code(text)
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#* *$", prose, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(f"{slug}-{count}" if count else slug)
    return anchors


def _relative_links() -> list[tuple[str, str]]:
    links = []
    for page in PAGES:
        _, prose = _code(page.read_text())
        prose = re.sub(r"`[^`\n]*`", "", prose)  # code spans are no links
        for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", prose):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                links.append((_name(page), target))
    return links


LINKS = _relative_links()


def test_the_links_are_found() -> None:
    assert len(LINKS) >= len(DOCS) * 2, LINKS


@pytest.mark.parametrize(("page", "target"), LINKS, ids=[f"{p} -> {t}" for p, t in LINKS])
def test_every_relative_link_resolves(page: str, target: str) -> None:
    path, _, anchor = target.partition("#")
    where = (REPO / page).parent / path if path else REPO / page
    assert where.exists(), f"{page}: {target}: no {where.relative_to(REPO)}"
    if anchor:
        assert where.suffix == ".md", f"{page}: {target}: an anchor in a file that is not markdown"
        assert anchor in _anchors(where.read_text()), f"{page}: {target}: no such heading"
