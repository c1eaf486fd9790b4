"""The documents are checked like code: every command in the README's code blocks exists in `farz --help`
(subcommands and options) or the Makefile, every file a tracked Markdown page links exists, the README stays
short, and no page narrates how the work was done."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from farz.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
CODE_BLOCK = re.compile(r"^```[a-z]*\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
DIARY = re.compile(
    r"\bsittings?\b|\b(this|that|next|last|previous|earlier|later|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth)"
    r" session\b|\bthis run\b",
    re.I,
)


def tracked_markdown() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "*.md"], cwd=REPO, capture_output=True, text=True, check=False).stdout.split()
    return [REPO / p for p in out] if out else sorted(p for p in REPO.rglob("*.md") if ".venv" not in p.parts and "build" not in p.parts)


def code_commands(program: str, page: Path = README) -> list[list[str]]:
    """Each command line of a page's code blocks that runs ``program``, as tokens, up to a comment or a pipe."""
    commands = []
    for block in CODE_BLOCK.findall(page.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
            lexer.commenters = "#"
            lexer.whitespace_split = True
            try:
                words = list(lexer)
            except ValueError:  # an unbalanced quote: not a shell line
                continue
            command: list[str] = []
            for word in [*words, ";"]:
                if word and set(word) <= set(";&|"):
                    if command and command[0] == program:
                        commands.append(command[1:])
                    command = []
                else:
                    command.append(word)
    return commands


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def check_farz_command(tokens: list[str]) -> str | None:
    """None when ``farz <tokens>`` names a real subcommand and only options it has; else what is wrong."""
    parser = build_parser()
    path = ["farz"]
    rest = list(tokens)
    while (choices := subparsers(parser)) and rest and not rest[0].startswith("-"):
        word = rest.pop(0)
        if word not in choices:
            return f"`{' '.join(path)}` has no subcommand {word!r} (it has {', '.join(sorted(choices))})"
        parser = choices[word]
        path.append(word)
    if subparsers(parser) and not (rest and rest[0] in {"-h", "--help"}):
        return f"`{' '.join(path)}` needs a subcommand"
    options = {s for action in parser._actions for s in action.option_strings}
    for word in rest:
        name = word.split("=", 1)[0]
        if name.startswith("--") and name not in options:
            return f"`{' '.join(path)}` has no option {name}"
    return None


def test_the_readme_is_at_most_300_lines() -> None:
    assert len(README.read_text().splitlines()) <= 300


def test_the_readme_starts_with_a_two_command_quick_start() -> None:
    text = README.read_text()
    quick = text[text.index("## Quick start") :].split("\n## ", 1)[0]
    block = CODE_BLOCK.findall(quick)[0]
    assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == ["make demo", "make test"]


def test_every_farz_command_in_the_readme_exists_with_its_options() -> None:
    commands = code_commands("farz")
    assert len(commands) >= 20  # the README shows each role's commands
    problems = [f"farz {' '.join(c)}: {why}" for c in commands if (why := check_farz_command(c))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", [p for p in tracked_markdown() if p != README], ids=lambda p: str(p.relative_to(REPO)))
def test_every_farz_command_in_the_other_pages_exists_with_its_options(page: Path) -> None:
    problems = [f"farz {' '.join(c)}: {why}" for c in code_commands("farz", page) if (why := check_farz_command(c))]
    assert not problems, "\n".join(problems)


def test_the_command_check_finds_a_wrong_subcommand_and_a_wrong_option() -> None:
    assert check_farz_command(["server", "run", "--port", "8000"]) is None
    assert "no subcommand 'serve'" in str(check_farz_command(["server", "serve"]))
    assert "no option --colour" in str(check_farz_command(["count", "VIDEO", "--colour"]))
    assert "needs a subcommand" in str(check_farz_command(["train"]))


def test_every_make_target_in_the_readme_exists() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = {m for m in re.findall(r"^([\w-]+):", makefile, re.M)}
    used = {c[0] for c in code_commands("make") if c}
    assert used and used <= targets, used - targets


@pytest.mark.parametrize("page", tracked_markdown(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_file_a_page_links_exists(page: Path) -> None:
    missing = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            missing.append(target)
    assert not missing, f"{page.name} links to missing files: {missing}"


@pytest.mark.parametrize("page", tracked_markdown(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_page_narrates_the_work(page: Path) -> None:
    lines = [f"{n}: {line.strip()}" for n, line in enumerate(page.read_text().splitlines(), 1) if DIARY.search(line)]
    assert not lines, "describe the product, not how the work went:\n" + "\n".join(lines)
