"""File formats: their names and one set of line-level readers for ``convert`` and ``annotate``.

Format names are declared here once: :class:`CorpusFormat` (what ``convert``
reads) and :class:`TextFormat` (what ``annotate`` reads and writes).

Every reader runs in one of two modes:

* strict (``strict=True``, for converting): the first problem raises
  :class:`ConversionError` naming ``file:line``;
* lenient (``strict=False``, for annotating): a problem is yielded as a
  :class:`BadLine` (line number and message) and reading goes on, so the caller
  can report it and skip the record.

Lines are decoded as UTF-8 one at a time (a byte-order mark on the first line
is dropped), so one bad line does not spoil the file.
"""
import json
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple, TypeVar, Union

PathLike = Union[str, Path]
T = TypeVar("T")


class CorpusFormat(str, Enum):
    """Corpus formats that ``convert`` turns into ``.spacy`` files."""

    iob = "iob"
    conll = "conll"
    genia = "genia"
    genia_layered = "genia-layered"
    genia_mlc = "genia-mlc"
    pubtator = "pubtator"


class TextFormat(str, Enum):
    """Document collections that ``annotate`` reads and writes."""

    jsonl = "jsonl"
    pubtator = "pubtator"


CORPUS_FORMATS = tuple(fmt.value for fmt in CorpusFormat)
TEXT_FORMATS = tuple(fmt.value for fmt in TextFormat)
# file suffix of each text format (annotate-dask names its outputs with it)
TEXT_SUFFIX = {TextFormat.jsonl.value: ".jsonl", TextFormat.pubtator.value: ".pubtator"}

PUBTATOR_TEXT_LINE = re.compile(r"^([^|\t]+)\|([ta])\|(.*)$")
PUBTATOR_HINT = (
    "PubTator documents are 'PMID|t|title', 'PMID|a|abstract', then "
    "'PMID<TAB>start<TAB>end<TAB>mention<TAB>type[<TAB>id]' lines, with a blank line between documents"
)
UTF8_HINT = "Re-encode the file as UTF-8"


class ConversionError(ValueError):
    """An input file cannot be read (strict mode) or an input corpus cannot be converted.

    The message reads ``"{path}:{line}: {what is wrong}. {what to do}"`` (the
    line part is left out where no single line is at fault).
    """

    def __init__(
        self, path: PathLike, line: Optional[int], problem: str, hint: str = ""
    ) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem.rstrip(". ")
        self.hint = hint
        where = self.path if line is None else f"{self.path}:{line}"
        message = f"{where}: {self.problem}."
        if hint:
            message += f" {hint}"
        super().__init__(message)


@dataclass
class BadLine:
    """A line a lenient reader could not use (a strict reader raises instead)."""

    line: int
    message: str
    hint: str = ""


def _checked(path: PathLike, items: Iterator[Union[T, BadLine]], strict: bool) -> Iterator[Union[T, BadLine]]:
    """``items``, raising ConversionError on the first BadLine if ``strict``."""
    for item in items:
        if strict and isinstance(item, BadLine):
            raise ConversionError(path, item.line, item.message, item.hint)
        yield item


# --- text lines ------------------------------------------------------------
def _iter_lines(path: PathLike) -> Iterator[Union[Tuple[int, str], BadLine]]:
    with Path(path).open("rb") as file_:
        for lineno, raw in enumerate(file_, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield BadLine(lineno, f"not valid UTF-8 ({err.reason} at byte {err.start})", UTF8_HINT)
                continue
            if lineno == 1:
                line = line.lstrip("\ufeff")
            yield lineno, line.rstrip("\r\n")


def iter_lines(path: PathLike, strict: bool = True) -> Iterator[Union[Tuple[int, str], BadLine]]:
    """Yield (1-based line number, line without its line break); a line that is not UTF-8 is a problem."""
    return _checked(path, _iter_lines(path), strict)


# --- JSON lines ------------------------------------------------------------
def json_type(value: Any) -> str:
    """The JSON name of ``value``'s type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _iter_json_lines(path: PathLike, hint: str) -> Iterator[Union[Tuple[int, Any], BadLine]]:
    for item in _iter_lines(path):
        if isinstance(item, BadLine):
            yield item
            continue
        lineno, line = item
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as err:
            yield BadLine(lineno, f"invalid JSON ({err.msg} at column {err.colno})", hint)


def iter_json_lines(
    path: PathLike, strict: bool = True, hint: str = ""
) -> Iterator[Union[Tuple[int, Any], BadLine]]:
    """Yield (line number, parsed JSON value) of a JSON-lines file; blank lines are skipped.

    ``hint`` goes with the message of a line that is not valid JSON."""
    return _checked(path, _iter_json_lines(path, hint), strict)


# --- PubTator --------------------------------------------------------------
@dataclass
class PubtatorAnnotation:
    line: int
    pmid: str
    start: int
    end: int
    mention: str
    label: str
    extra: List[str] = field(default_factory=list)  # the columns after the type (concept id, score, ...)


@dataclass
class PubtatorDocument:
    pmid: str
    line: int
    title: str
    abstract: Optional[str] = None
    annotations: List[PubtatorAnnotation] = field(default_factory=list)
    relations: int = 0  # relation lines (PMID<TAB>CID<TAB>id1<TAB>id2), skipped

    @property
    def text(self) -> str:
        """``title + " " + abstract`` (the title alone without an abstract line): what offsets refer to."""
        if self.abstract is None:
            return self.title
        return f"{self.title} {self.abstract}"


def _is_offset(value: str) -> bool:
    return value.isdigit()


def _iter_pubtator(path: PathLike, annotations: bool) -> Iterator[Union[PubtatorDocument, BadLine]]:
    current: Optional[PubtatorDocument] = None
    for item in _iter_lines(path):
        if isinstance(item, BadLine):
            yield item
            continue
        lineno, line = item
        if not line.strip():
            if current is not None:
                yield current
            current = None
            continue
        match = PUBTATOR_TEXT_LINE.match(line)
        if match and match.group(1).strip():
            pmid, kind, text = match.group(1).strip(), match.group(2), match.group(3)
            if kind == "t":
                if current is not None:
                    yield current
                current = PubtatorDocument(pmid=pmid, line=lineno, title=text)
            elif current is None or current.pmid != pmid or current.abstract is not None:
                yield BadLine(
                    lineno, f"abstract line for {pmid} does not follow the title line of the same document",
                    PUBTATOR_HINT,
                )
            elif current.annotations:
                yield BadLine(lineno, "abstract line after annotation lines", PUBTATOR_HINT)
            else:
                current.abstract = text
            continue
        columns = line.split("\t")
        if current is None:
            yield BadLine(
                lineno, f"line outside a document (no 'PMID|t|title' line before it): {line[:80]!r}",
                PUBTATOR_HINT,
            )
        elif annotations and len(columns) >= 5 and _is_offset(columns[1]) and _is_offset(columns[2]):
            current.annotations.append(
                PubtatorAnnotation(
                    line=lineno, pmid=columns[0], start=int(columns[1]), end=int(columns[2]),
                    mention=columns[3], label=columns[4], extra=columns[5:],
                )
            )
        elif annotations and len(columns) == 4 and not _is_offset(columns[1]):
            current.relations += 1
        elif annotations or columns[0].strip() != current.pmid or len(columns) < 4:
            yield BadLine(
                lineno,
                f"not a title, abstract, annotation or relation line of document {current.pmid}: {line[:80]!r}",
                PUBTATOR_HINT,
            )
        # else: text only: an annotation or relation line of the current document, not parsed
    if current is not None:
        yield current


def iter_pubtator(
    path: PathLike, strict: bool = True, annotations: bool = True
) -> Iterator[Union[PubtatorDocument, BadLine]]:
    """Yield the documents of a PubTator file (blank line between documents).

    ``annotations``: parse the annotation lines (``PMID<TAB>start<TAB>end<TAB>mention<TAB>type...``)
    and count the relation lines; if False only the text is read and such lines
    are only checked to carry the document's PMID and at least four columns.
    Checking the offsets against the text is left to the caller.
    """
    return _checked(path, _iter_pubtator(path, annotations), strict)
