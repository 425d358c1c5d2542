"""The documentation holds: the README stays a front door, its config table is conf/'s, and every link lands."""

import re
from pathlib import Path

from helpers import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def outside_fences(path: Path) -> list[str]:
    """The file's lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def prose(path: Path) -> list[str]:
    """The file's lines outside code, fenced or inline: links in code are not links."""
    return [re.sub(r"`[^`]*`", "", line) for line in outside_fences(path)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation but hyphens and spaces dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a Markdown file, repeats numbered ``-1``, ``-2``... as GitHub numbers them."""
    seen: dict[str, int] = {}
    found = set()
    for line in outside_fences(path):
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """``file: target (why)`` for each relative link of a page that names no file, or no heading of its file."""
    broken = []
    for line in prose(path):
        for target in LINK.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(root)}: {target}"
            if not dest.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and (dest.is_dir() or dest.suffix != ".md" or anchor not in anchors(dest)):
                broken.append(f"{where} (no such heading)")
    return broken


def config_table(text: str) -> dict[str, set[str]]:
    """The README's ``| group | options | ...`` table: each group's backticked option names."""
    table: dict[str, set[str]] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if re.match(r"\|\s*group\s*\|\s*options\s*\|", line):
            break
    for line in lines:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if set(cells[0]) <= set("-: "):
            continue
        table[cells[0].strip("`")] = set(re.findall(r"`([^`]+)`", cells[1]))
    return table


def test_readme_is_a_front_door_of_at_most_250_lines():
    assert len(README.read_text().splitlines()) <= 250


def test_every_relative_link_and_anchor_in_the_readme_and_docs_resolves():
    assert PAGES[1:], "no docs/ pages found"
    broken = [b for page in PAGES for b in broken_links(page)]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_link_check_sees_a_broken_file_and_a_broken_heading(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other page\n\n## Weights & Biases\n")
    page.write_text(
        "# Title\n[ok](other.md#weights--biases) [self](#title) [web](https://example.org/x.md)\n"
        "`[code](nowhere.md)`\n```\n[fenced](nowhere.md)\n```\n[gone](missing.md) [bad](other.md#nope)\n"
    )
    assert [b.split(": ", 1)[1] for b in broken_links(page, tmp_path)] == [
        "missing.md (no such file)",
        "other.md#nope (no such heading)",
    ]


def test_slugs_follow_githubs_rule():
    assert slug("Weights & Biases") == "weights--biases"
    assert slug("The probe's inputs") == "the-probes-inputs"
    assert slug("Pretrained encoders (`encoder=jepa`, `ae`)") == "pretrained-encoders-encoderjepa-ae"


def test_the_readmes_config_table_lists_every_group_and_option_of_conf():
    table = config_table(README.read_text())
    groups = {d.name for d in (ROOT / "conf").iterdir() if d.is_dir() and d.name != "hydra"}
    assert set(table) == groups, "README's config table: groups differ from conf/"
    for group in sorted(groups):
        options = {p.stem for p in (ROOT / "conf" / group).glob("*.yaml")}
        assert table[group] == options, f"README's config table, {group}: {sorted(table[group])} != {sorted(options)}"


def test_ci_runs_exactly_the_readmes_test_command():
    commands = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert len(commands) == 1 and commands[0] in README.read_text().splitlines()


def test_every_docs_page_is_in_its_index():
    for index in (DOCS / "README.md", DOCS / "results" / "README.md"):
        linked = {(index.parent / t.partition("#")[0]).resolve() for line in prose(index) for t in LINK.findall(line)}
        pages = {p.resolve() for p in index.parent.glob("*.md") if p.name != "README.md"}
        assert pages <= linked, f"{index.relative_to(ROOT)} does not list {sorted(p.name for p in pages - linked)}"
