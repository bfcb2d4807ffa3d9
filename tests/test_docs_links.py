"""Every relative link of README.md and docs/*.md points to a file or folder of the repository,
and every #anchor to a heading (GitHub's slugs) or an <a id> of the file it names."""
import re
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path, cache: Dict[Path, Set[str]]) -> Set[str]:
    if path not in cache:
        text = path.read_text(encoding="utf8")
        found = set(re.findall(r'<a id="([^"]+)"', text))
        seen: Dict[str, int] = {}
        in_code = False
        for line in text.splitlines():
            if line.startswith("```"):
                in_code = not in_code
            if in_code or not line.startswith("#"):
                continue
            base = slug(line.lstrip("#"))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
        cache[path] = found
    return cache[path]


def links(path: Path) -> List[Tuple[int, str]]:
    out = []
    in_code = False
    for number, line in enumerate(path.read_text(encoding="utf8").splitlines(), 1):
        if line.startswith("```"):
            in_code = not in_code
        if not in_code:
            out += [(number, target) for target in LINK.findall(line)]
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve(doc):
    cache: Dict[Path, Set[str]] = {}
    broken = []
    for number, target in links(doc):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        path = (doc.parent / file_part).resolve() if file_part else doc
        if not path.exists():
            broken.append(f"{doc.name}:{number}: {target} (no such file)")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path, cache):
            broken.append(f"{doc.name}:{number}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_slug_follows_github():
    assert slug(" Nested GENIA against `spancat`") == "nested-genia-against-spancat"
    assert slug("A pretrained transformer: MiniLM-L6") == "a-pretrained-transformer-minilm-l6"
