"""The README's commands still work: every `cdat` line parses, every file and link exists.

Running the commands themselves is the job of the tests that cover each one; this keeps the
README from drifting from them (a renamed option, a moved script, a dropped document).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from mobile_api.cli.commands import get_args_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
# Placeholders a reader fills in, written as the README writes them.
FILL_INS = {"<chosen>": "0.15", "[--json]": "--json"}
# `cdat ...`, maybe after `VAR=value` assignments (`CDAT_ONNX_BATCH_SIZE=8 cdat worker`).
CDAT_LINE = re.compile(r"^(?:\w+=\S+\s+)*cdat\s")


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def logical_lines(block: str) -> list[str]:
    """Lines of a shell block with `\\` continuations joined and comments dropped."""
    joined = block.replace("\\\n", " ")
    lines = (line.split(" #", 1)[0].strip() for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def cdat_commands() -> list[list[str]]:
    commands = []
    for block in bash_blocks(README):
        for line in logical_lines(block):
            if not CDAT_LINE.match(line):
                continue
            for fill_in, value in FILL_INS.items():
                line = line.replace(fill_in, value)
            words = shlex.split(line.split(" < ", 1)[0])
            commands.append(words[words.index("cdat") + 1 :])
    return commands


def test_the_readme_stays_short() -> None:
    # given the README a newcomer reads first
    # then it stays under 250 lines (the history lives in docs/)
    assert len(README.splitlines()) < 250


def test_the_two_commands_come_first() -> None:
    # given the README
    # when the first code block is read
    first = bash_blocks(README)[0]
    # then it is `make serve` and `make test`, and both are Makefile targets
    assert [line.split()[:2] for line in logical_lines(first)] == [
        ["make", "serve"],
        ["make", "test"],
    ]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^serve:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


@pytest.mark.parametrize("words", cdat_commands(), ids=" ".join)
def test_every_cdat_command_in_the_readme_parses(words: list[str]) -> None:
    # given a `cdat` command as the README writes it
    # when the real `cdat` parser reads it
    parsed = get_args_parser().parse_args(words)
    # then it names a command with a handler (argparse exits on an unknown option)
    assert callable(parsed.handler)


def test_the_readme_has_cdat_commands_to_check() -> None:
    # guards the parametrized test above against finding nothing to check
    names = {words[0] for words in cdat_commands()}
    assert {"serve", "worker", "db", "adjuster", "assess", "train", "evaluate"} <= names


def test_every_file_and_link_in_the_readme_exists() -> None:
    # given the repository paths the README names: scripts it runs and documents it links
    scripts = re.findall(r"python (bench/\w+\.py)", README)
    links = re.findall(r"\]\(((?:docs|datasets|inference|training)/[^)]+)\)", README)
    # then each of them is in the tree, and a link's #section is a heading of its file
    missing = [path for path in scripts + links if not _resolves(path)]
    assert scripts and links and missing == []


def _resolves(link: str) -> bool:
    path, _, section = link.partition("#")
    if not (ROOT / path).exists():
        return False
    if not section:
        return True
    headings = re.findall(r"^#+ (.+)$", (ROOT / path).read_text(), re.MULTILINE)
    return section in {_slug(heading) for heading in headings}


def _slug(heading: str) -> str:
    """A heading's anchor as GitHub writes it."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
