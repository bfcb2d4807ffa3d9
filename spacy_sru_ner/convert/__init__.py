"""Convert NER corpora into spaCy ``.spacy`` files (DocBin).

Formats (``fmt``):

* ``iob``: ``token<TAB>tag`` IOB2, MTL-Bioinformatics-2016 / JNLPBA (``-DOCSTART-``).
* ``conll``: CoNLL-2003 ``token POS chunk NER``.
* ``genia``: GENIA nested JSON lines (Yan et al.).
* ``genia-layered``: Ju et al. layered ``.iob2`` (``token<TAB>L1<TAB>L2...``).
* ``genia-mlc``: per-type ``token tag`` files of one split, merged (several inputs).
* ``pubtator``: PubTator title/abstract + character-offset annotations.

Each Doc holds all mentions in ``doc.spans[spans_key]`` (nested allowed),
``doc.ents`` when they do not overlap, the corpus's annotated labels and,
optionally, a corpus name (see :mod:`spacy_sru_ner.contract`).

Main entry point: :func:`convert_file`.
"""
import glob
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

from spacy.tokens import Doc
from spacy.vocab import Vocab

from ..contract import DEFAULT_SPANS_KEY
from ..formats import CORPUS_FORMATS as FORMATS
from .common import DOC_ID_KEY, ConversionError, ConversionStats
from .common import CorpusCounts, ParsedCorpus, ParsedDoc, PathLike, count_docs
from .common import iter_docs, print_stats, write_corpus
from .conll import read_conll
from .genia import read_genia_jsonl, read_genia_layered, read_genia_mlc
from .iob import read_iob
from .pubtator import read_pubtator

Inputs = Union[PathLike, Sequence[PathLike]]

__all__ = [
    "FORMATS",
    "DEFAULT_SPANS_KEY",
    "DOC_ID_KEY",
    "ConversionError",
    "ConversionStats",
    "CorpusCounts",
    "ParsedCorpus",
    "ParsedDoc",
    "convert_file",
    "corpus_to_docs",
    "count_docs",
    "detect_format",
    "print_stats",
    "read_corpus",
    "resolve_inputs",
    "read_iob",
    "read_conll",
    "read_genia_jsonl",
    "read_genia_layered",
    "read_genia_mlc",
    "read_pubtator",
]


def resolve_inputs(inputs: Inputs) -> List[Path]:
    """Turn a path, a comma-separated list, a glob pattern or a sequence of those into files."""
    if isinstance(inputs, (str, Path)):
        parts: List[str] = [p for p in str(inputs).split(",") if p.strip()]
    else:
        parts = [str(p) for p in inputs]
    paths: List[Path] = []
    for part in parts:
        part = part.strip()
        if any(char in part for char in "*?["):
            matches = sorted(glob.glob(part))
            if not matches:
                raise ConversionError(part, None, "no file matches this pattern", "Check the path")
            paths.extend(Path(m) for m in matches)
        else:
            paths.append(Path(part))
    if not paths:
        raise ConversionError(
            str(inputs), None, "no input file given", "Pass a file, a comma-separated list or a glob"
        )
    for path in paths:
        if not path.is_file():
            raise ConversionError(path, None, "file not found", "Check the path")
    return paths


def _first_data_line(path: Path) -> str:
    with path.open(encoding="utf-8", errors="replace") as file_:
        for line in file_:
            if line.strip() and not line.startswith("-DOCSTART-"):
                return line.rstrip("\r\n")
    return ""


def detect_format(paths: Sequence[Path]) -> str:
    """Guess the format from the file extension (and the first line where needed)."""
    if len(paths) > 1:
        return "genia-mlc"
    path = paths[0]
    suffix = path.suffix.lower()
    if suffix == ".tsv":
        return "iob"
    if suffix in (".jsonlines", ".jsonl", ".json"):
        return "genia"
    if suffix == ".iob2":
        return "genia-layered"
    first = _first_data_line(path)
    if suffix in (".pubtator",) or "|t|" in first.split("\t")[0]:
        return "pubtator"
    if suffix in (".txt", ".conll"):
        n_columns = len(first.split())
        if n_columns == 4:
            return "conll"
        if "\t" in first and n_columns == 2:
            return "iob"
    raise ConversionError(
        path, None, "cannot detect the format from the file name and first line",
        f"Pass --format (one of {', '.join(FORMATS)})",
    )


def read_corpus(
    inputs: Inputs,
    fmt: Optional[str] = None,
    *,
    label_map: Optional[Dict[str, str]] = None,
    split_sentences: bool = False,
) -> ParsedCorpus:
    """Parse the input file(s) of one corpus split into records (nothing written)."""
    paths = resolve_inputs(inputs)
    fmt = fmt or detect_format(paths)
    if fmt not in FORMATS:
        raise ConversionError(
            ",".join(map(str, paths)), None, f"unknown format {fmt!r}",
            f"Use one of {', '.join(FORMATS)}",
        )
    if fmt == "genia-mlc":
        return read_genia_mlc(paths, label_map)
    if len(paths) != 1:
        raise ConversionError(
            ",".join(map(str, paths)), None, f"format {fmt!r} takes one input file, got {len(paths)}",
            "Only genia-mlc merges several files",
        )
    path = paths[0]
    if fmt == "iob":
        return read_iob(path, label_map)
    if fmt == "conll":
        return read_conll(path, label_map)
    if fmt == "genia":
        return read_genia_jsonl(path, label_map)
    if fmt == "genia-layered":
        return read_genia_layered(path, label_map)
    return read_pubtator(path, label_map, split_sentences=split_sentences)


def corpus_to_docs(
    inputs: Inputs,
    fmt: Optional[str] = None,
    vocab: Optional[Vocab] = None,
    *,
    spans_key: str = DEFAULT_SPANS_KEY,
    corpus_name: Optional[str] = None,
    label_map: Optional[Dict[str, str]] = None,
    labels: Iterable[str] = (),
    limit: Optional[int] = None,
    split_sentences: bool = False,
) -> List[Doc]:
    """Convert input file(s) into Docs in memory (no file written, no verification)."""
    corpus = read_corpus(inputs, fmt, label_map=label_map, split_sentences=split_sentences)
    if not corpus.docs:
        raise ConversionError(
            ",".join(corpus.paths), None, "contains no sentences", "Check the file and --format"
        )
    return list(
        iter_docs(corpus, vocab, spans_key=spans_key, labels=labels, corpus_name=corpus_name, limit=limit)
    )


def convert_file(
    inputs: Inputs,
    output: PathLike,
    fmt: Optional[str] = None,
    *,
    spans_key: str = DEFAULT_SPANS_KEY,
    corpus_name: Optional[str] = None,
    label_map: Optional[Dict[str, str]] = None,
    labels: Iterable[str] = (),
    limit: Optional[int] = None,
    split_sentences: bool = False,
) -> ConversionStats:
    """Convert one corpus split into a ``.spacy`` file and verify it.

    inputs: a file, or for ``genia-mlc`` several files (sequence, comma-separated
        string or glob pattern).
    output: the ``.spacy`` file to write (parent folders are created).
    fmt: one of FORMATS; guessed from the extension if None.
    spans_key: the ``doc.spans`` key holding all mentions.
    corpus_name: stored with ``set_corpus_name`` if given.
    label_map: old -> new label names, applied before anything else.
    labels: labels the corpus annotates besides those found in the file.
    limit: write only the first ``limit`` Docs (sentences; documents for
        PubTator without ``split_sentences``).
    split_sentences: PubTator only: one Doc per sentence instead of per document.

    Raises ConversionError on malformed input and if the file read back does
    not reproduce the counts of the input.
    """
    corpus = read_corpus(inputs, fmt, label_map=label_map, split_sentences=split_sentences)
    fmt = fmt or detect_format([Path(p) for p in corpus.paths])
    return write_corpus(
        corpus, output, fmt, spans_key=spans_key, labels=labels,
        corpus_name=corpus_name, limit=limit,
    )
