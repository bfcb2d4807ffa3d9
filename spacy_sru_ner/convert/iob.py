"""Token-per-line IOB2 corpora, e.g. the MTL-Bioinformatics-2016 ``.tsv`` files.

Format: ``token<TAB>tag`` per line, IOB2 tags, a blank line between sentences,
optional ``-DOCSTART-<TAB>O`` lines between documents (JNLPBA). The block
reader and the IOB2 decoding here are shared with the CoNLL and GENIA
layered/MLC readers.
"""
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from ..contract import map_label
from ..formats import iter_lines
from .common import ConversionError, LabelMap, Mention, ParsedCorpus, ParsedDoc, PathLike
from .common import normalize_mentions

DOCSTART = "-DOCSTART-"
_BLANKS = re.compile(r"[ \t]+")


@dataclass
class TokenBlock:
    """One blank-line separated sentence of a token-per-line file."""

    rows: List[List[str]]
    lines: List[int]
    doc_id: Optional[str] = None

    @property
    def words(self) -> List[str]:
        return [row[0] for row in self.rows]

    @property
    def line(self) -> int:
        return self.lines[0]


def iob_to_mentions(
    tags: Sequence[str], label_map: LabelMap = None
) -> Tuple[List[Mention], int]:
    """Decode valid IOB2 tags into mentions; return (mentions, repairs).

    An ``I-X`` tag that does not continue an ``X`` mention starts a new mention
    and counts as a repair.
    """
    mentions: List[Mention] = []
    repairs = 0
    start: Optional[int] = None
    label: Optional[str] = None
    for i, tag in enumerate(tags):
        if tag == "O":
            if start is not None:
                mentions.append((start, i, label))  # type: ignore[arg-type]
            start, label = None, None
            continue
        prefix, tag_label = tag[0], map_label(tag[2:], label_map, drop_empty=False)
        if prefix == "I" and start is not None and tag_label == label:
            continue
        if start is not None:
            mentions.append((start, i, label))  # type: ignore[arg-type]
        if prefix == "I":
            repairs += 1
        start, label = i, tag_label
    if start is not None:
        mentions.append((start, len(tags), label))  # type: ignore[arg-type]
    return mentions, repairs


def is_iob_tag(tag: str) -> bool:
    """Whether ``tag`` is ``O``, ``B-x`` or ``I-x`` with a non-empty label."""
    return tag == "O" or (len(tag) > 2 and tag[0] in "BI" and tag[1] == "-" and bool(tag[2:].strip()))


def split_columns(line: str, sep: Optional[str]) -> List[str]:
    """Split a data line: on ``sep`` (e.g. a tab), or on runs of spaces/tabs if ``sep`` is None."""
    if sep is None:
        return _BLANKS.split(line.strip(" \t"))
    return line.split(sep)


def read_token_blocks(
    path: PathLike,
    sep: Optional[str],
    n_columns: Optional[int] = None,
    min_columns: int = 2,
    layout: str = "token<TAB>tag",
) -> List[TokenBlock]:
    """Read a token-per-line file into sentence blocks.

    ``n_columns``: the exact number of columns; if None, the first token line
    sets it for the whole file (at least ``min_columns``). ``-DOCSTART-``
    lines end the current sentence and start a new document.
    """
    path = Path(path)
    sep_word = "tab" if sep == "\t" else "space"
    sep_name = f"{sep_word}-separated"
    blocks: List[TokenBlock] = []
    rows: List[List[str]] = []
    lines: List[int] = []
    doc_id: Optional[str] = None
    expected = n_columns
    first_line: Optional[int] = None

    def flush() -> None:
        if rows:
            blocks.append(TokenBlock(rows=list(rows), lines=list(lines), doc_id=doc_id))
            rows.clear()
            lines.clear()

    for lineno, line in iter_lines(path):
        if not line.strip():
            flush()
            continue
        columns = split_columns(line, sep)
        if columns[0] == DOCSTART:
            flush()
            doc_id = f"{path.name}:{lineno}"
            continue
        if expected is None:
            if len(columns) < min_columns:
                raise ConversionError(
                    path, lineno,
                    f"expected at least {min_columns} {sep_name} columns ({layout}), "
                    f"found {len(columns)}",
                    "Check the file format (--format) and the column separator",
                )
            expected, first_line = len(columns), lineno
        if len(columns) != expected:
            where = f" as on line {first_line}" if first_line is not None else ""
            raise ConversionError(
                path, lineno,
                f"expected {expected} {sep_name} columns ({layout}){where}, "
                f"found {len(columns)}: {line!r}",
                "Fix the line or check the file format (--format)",
            )
        if any(not c for c in columns):
            raise ConversionError(
                path, lineno, f"empty column in {line!r}",
                f"Each line must be {layout}, with a single {sep_word} between columns",
            )
        rows.append(columns)
        lines.append(lineno)
    flush()
    return blocks


def check_tags(path: PathLike, block: TokenBlock, column: int) -> List[str]:
    """Return the tags of ``column`` in ``block``, raising on a tag that is not O / B-x / I-x."""
    tags = [row[column] for row in block.rows]
    for tag, lineno in zip(tags, block.lines):
        if not is_iob_tag(tag):
            raise ConversionError(
                path, lineno, f"invalid tag {tag!r}",
                "Tags must be IOB2: O, B-<label> or I-<label>",
            )
    return tags


def block_mentions(
    path: PathLike, block: TokenBlock, columns: List[int], label_map: LabelMap
) -> Tuple[List[Mention], int, int]:
    """Union of the mentions of the tag ``columns``; return (mentions, repairs, duplicates)."""
    mentions: List[Mention] = []
    repairs = 0
    for column in columns:
        found, fixed = iob_to_mentions(check_tags(path, block, column), label_map)
        mentions.extend(found)
        repairs += fixed
    unique, duplicates = normalize_mentions(mentions)
    return unique, repairs, duplicates


def read_iob(path: PathLike, label_map: LabelMap = None) -> ParsedCorpus:
    """Read a ``token<TAB>tag`` IOB2 file (MTL-Bioinformatics-2016 / JNLPBA)."""
    return read_tagged_file(path, sep="\t", n_columns=2, tag_columns=[1], label_map=label_map)


def read_tagged_file(
    path: PathLike,
    sep: Optional[str],
    n_columns: Optional[int],
    tag_columns: Optional[List[int]],
    label_map: LabelMap = None,
    layout: str = "token<TAB>tag",
    min_columns: int = 2,
) -> ParsedCorpus:
    """Read a token-per-line file whose ``tag_columns`` hold IOB2 tags (None: all but the first)."""
    blocks = read_token_blocks(path, sep, n_columns, min_columns=min_columns, layout=layout)
    corpus = ParsedCorpus(paths=[str(path)], docs=[])
    for block in blocks:
        columns = tag_columns if tag_columns is not None else list(range(1, len(block.rows[0])))
        columns = [c if c >= 0 else len(block.rows[0]) + c for c in columns]
        mentions, repairs, duplicates = block_mentions(path, block, columns, label_map)
        corpus.repairs += repairs
        corpus.duplicates += duplicates
        corpus.docs.append(
            ParsedDoc(words=block.words, mentions=mentions, line=block.line, doc_id=block.doc_id)
        )
    return corpus
