"""The README and docs/: every relative link and image resolves, every quoted ``python`` command exists and
accepts the flags it shows (``--help`` of its own parser, in this process: nothing trains)."""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import shlex
from pathlib import Path

import pytest

from conftest import REPO_ROOT, load_script

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
LAB_PAGES = sorted((REPO_ROOT / "docs" / "lab").glob("*.md"))  # dated notes: links checked, commands kept as run
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`(python [^`]+)`")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {github_anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def links(page: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", page.read_text()))


def test_there_is_documentation_to_check():
    names = {page.name for page in PAGES}
    assert {"README.md", "data.md", "recipe.md", "results.md", "benchmarks.md", "distributed.md",
            "troubleshooting.md"} <= names
    assert len((REPO_ROOT / "README.md").read_text().splitlines()) <= 250  # a front door, not a notebook


@pytest.mark.parametrize("page", PAGES + LAB_PAGES, ids=lambda page: page.relative_to(REPO_ROOT).as_posix())
def test_every_relative_link_and_image_resolves(page):
    for link in links(page):
        if re.match(r"^[a-z]+:", link):  # http(s), mailto: not checked offline
            continue
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), f"{page.name}: {link} does not exist"
        if anchor and path.suffix == ".md":
            assert anchor in anchors(path), f"{page.name}: {link}: no heading #{anchor} in {path.name}"


def quoted_commands(page: Path) -> list[str]:
    """Every ``python ...`` command of ``page``'s code blocks and inline code, continuation lines joined."""
    text = page.read_text()
    commands = []
    for block in FENCE.findall(text):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            line = line.split(" #", 1)[0]  # a comment after the command
            commands += ["python " + part.strip() for part in re.split(r"(?:^|\s|&&\s*)python\s", line)[1:]]
    commands += [" ".join(command.split()) for command in INLINE.findall(text)]
    return commands


def help_text(command: str) -> str:
    """The ``--help`` text of the script, module or subcommand that ``command`` runs (in this process)."""
    words = shlex.split(command.split(" -- ", 1)[0])[1:]  # after "--": the command a launcher runs
    if words[0] == "-m":
        module, words = words[1], words[2:]
        if module == "pytest":
            return ""  # not this project's parser
        main = importlib.import_module(f"{module}.__main__" if module.startswith(("speechsep", "benchmarks")) else module).main
    else:
        script = REPO_ROOT / words[0]
        assert script.is_file(), f"{words[0]} does not exist"
        main, words = load_script(words[0]).main, words[1:]
    if words and re.fullmatch(r"[a-z]+(\|[a-z]+)+", words[0]):  # "evaluate|separate|launch": each must exist
        prefix = command.split(words[0], 1)[0]
        return "\n".join(help_text(prefix + alternative) for alternative in words[0].split("|"))
    subcommand = [words[0]] if words and re.fullmatch(r"[a-z]+", words[0]) else []
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), pytest.raises(SystemExit) as stop:
        main(subcommand + ["--help"])
    assert stop.value.code == 0, f"{command}: {out.getvalue()}"
    return out.getvalue()


def test_every_quoted_python_command_exists_and_accepts_its_flags():
    commands = sorted({command for page in PAGES for command in quoted_commands(page)})
    assert any("speechsep report" in c for c in commands) and any("make_pictures" in c for c in commands)
    helps = {}
    for command in commands:
        head = " ".join(shlex.split(command.split(" -- ", 1)[0])[:4])
        key = re.sub(r" --.*", "", head)
        if key not in helps:
            helps[key] = help_text(command)
        if not helps[key]:
            continue
        shown = FLAG.findall(command.split(" -- ", 1)[0])
        missing = [flag for flag in shown if not re.search(re.escape(flag) + r"(?![\w-])", helps[key])]
        assert not missing, f"{command}: {missing} not in its --help"


def test_the_command_check_catches_an_unknown_flag_and_script():
    with pytest.raises(AssertionError):
        help_text("python Missing/script.py --quick")
    with pytest.raises(AssertionError):
        help_text("python -m speechsep evaluate|nosuchcommand")
    helps = help_text("python -m speechsep report RUN")
    assert "--mixtures" in helps and "--no-such-flag" not in helps


def test_the_readme_opens_with_installing_and_separating():
    """What the kit is, the install, separating a recording within the first screen, then the experiments;
    the lab's business (issues, stages of work, targets) stays in docs/lab/."""
    text = (REPO_ROOT / "README.md").read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    order = ["## Install", "## Separate a recording", "## Set-up: two commands on a fresh machine",
             "## The experiments", "## Results", "## Documentation"]
    assert [h for h in headings if h in order] == order
    assert text.splitlines().index("## Separate a recording") < 30
    assert not re.findall(r"\b(?:issues?|stages?|targets?)\b", text, re.I)
    assert "python -m pytest -q\n" in text  # the test command .ci/run runs
    assert (REPO_ROOT / "docs" / "lab" / "README.md").exists() and text.count("(docs/lab/README.md)") == 1
