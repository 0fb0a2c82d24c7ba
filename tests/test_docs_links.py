"""The documentation holds together: every relative link in the Markdown files points to
a file that exists (and, with a #fragment, to a heading in it), and the README's first
screen gives the install command and the test command that CI (.ci/run) runs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted(
    [REPO / "README.md", REPO / "CONTRIBUTING.md", REPO / "benchmarks" / "README.md"]
    + list((REPO / "docs").glob("*.md"))
)
FIRST_SCREEN = 25
INSTALL = "pip install . && promptlab demo -d ./promptlab.db"
TEST = "pip install '.[test]' && pytest"

# [text](target) and ![alt](target); the target ends at the first blank or ")".
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def prose(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, inline code removed."""
    fenced = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, re.sub(r"`[^`]*`", "``", line)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def raw_heading_lines(path: Path) -> list[str]:
    """Headings with their inline code kept (prose() blanks it, slugs need it)."""
    fenced, out = False, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and HEADING.match(line):
            out.append(HEADING.match(line).group(1))
    return out


def heading_anchors(path: Path) -> set:
    found, seen = set(), {}
    for heading in raw_heading_lines(path):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> Iterator[tuple[int, str]]:
    for number, line in prose(path):
        for match in LINK.finditer(line):
            yield number, match.group(1)


def test_the_documents_exist():
    for path in DOCS:
        assert path.is_file(), path
    assert (REPO / "LICENSE").is_file()
    assert len(DOCS) >= 5  # README, CONTRIBUTING, benchmarks/README and docs/*.md


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(path):
    checked, broken = 0, []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto:
            continue
        file_part, _, fragment = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        checked += 1
        if not dest.exists():
            broken.append(f"{path.name}:{number}: {target} (no {dest})")
        elif fragment and dest.suffix == ".md" and fragment not in heading_anchors(dest):
            broken.append(f"{path.name}:{number}: {target} (no heading #{fragment})")
        elif dest.is_dir() and not any(dest.iterdir()):
            broken.append(f"{path.name}:{number}: {target} (an empty folder)")
    assert broken == []
    if path.name == "README.md" and path.parent == REPO:
        assert checked >= 5  # the README links to the rest of the documentation


def test_every_document_is_reachable_from_the_readme():
    """Each guide in docs/ is linked from the README or from a document it links to."""
    reached, todo = set(), [REPO / "README.md"]
    while todo:
        path = todo.pop()
        if path in reached:
            continue
        reached.add(path)
        for _, target in links(path):
            file_part = target.partition("#")[0]
            if file_part.endswith(".md") and "://" not in file_part:
                dest = (path.parent / file_part).resolve()
                if dest.is_file():
                    todo.append(dest)
    assert [p for p in DOCS if p.resolve() not in reached] == []


def test_readme_first_screen_has_the_install_and_test_commands():
    first = (REPO / "README.md").read_text(encoding="utf-8").splitlines()[:FIRST_SCREEN]
    assert INSTALL in first
    assert TEST in first


def test_readme_test_command_is_what_ci_runs():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert f"( {TEST} )" in ci
