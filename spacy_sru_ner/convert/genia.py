"""Nested GENIA corpora in three layouts.

* ``genia``: JSON lines (Yan et al. 2022 / CNN_Nested_NER), one sentence per
  line: ``{"tokens": [...], "doc_id": ..., "sent_id": ...,
  "entity_mentions": [{"start", "end" (exclusive), "entity_type", "text"}]}``.
* ``genia-layered``: Ju et al. 2018 ``.iob2``, ``token<TAB>L1<TAB>L2...``, each
  layer column an IOB2 sequence; the nested mentions are the union of the
  layers' mentions (deduplicated).
* ``genia-mlc``: one ``token tag`` file per entity type for the same split
  (nested-ner-mlc); the files must hold identical tokens sentence by sentence
  and are merged into one nested corpus (union of mentions).
"""
from pathlib import Path
from typing import Any, List, Sequence, Tuple

from ..contract import map_label
from .common import ConversionError, LabelMap, Mention, ParsedCorpus, ParsedDoc, PathLike
from .common import normalize_mentions
from ..formats import iter_json_lines
from .iob import TokenBlock, block_mentions, read_tagged_file, read_token_blocks

JSONL_HINT = (
    "Each line must be one JSON object with 'tokens' (list of strings) and "
    "'entity_mentions' (list of {start, end, entity_type, text}, end exclusive)"
)


def read_genia_jsonl(path: PathLike, label_map: LabelMap = None) -> ParsedCorpus:
    """Read GENIA JSON lines (one sentence per line, token-offset mentions)."""
    corpus = ParsedCorpus(paths=[str(path)], docs=[])
    for lineno, obj in iter_json_lines(path, hint=JSONL_HINT):
        record, duplicates = _jsonl_record(path, lineno, obj, label_map)
        corpus.duplicates += duplicates
        corpus.docs.append(record)
    return corpus


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _jsonl_record(
    path: PathLike, lineno: int, obj: Any, label_map: LabelMap
) -> Tuple[ParsedDoc, int]:
    """Validate one JSON line and turn it into a record; return (record, duplicates)."""
    if not isinstance(obj, dict):
        raise ConversionError(path, lineno, f"expected a JSON object, found {type(obj).__name__}", JSONL_HINT)
    tokens = obj.get("tokens")
    if not isinstance(tokens, list) or not tokens:
        raise ConversionError(path, lineno, "'tokens' is missing, empty or not a list", JSONL_HINT)
    for i, token in enumerate(tokens):
        if not isinstance(token, str) or not token:
            raise ConversionError(path, lineno, f"token {i} is {token!r}, not a non-empty string", JSONL_HINT)
    raw_mentions = obj.get("entity_mentions")
    if not isinstance(raw_mentions, list):
        raise ConversionError(path, lineno, "'entity_mentions' is missing or not a list", JSONL_HINT)
    mentions: List[Mention] = []
    for i, raw in enumerate(raw_mentions):
        what = f"entity_mentions[{i}]"
        if not isinstance(raw, dict):
            raise ConversionError(path, lineno, f"{what} is not an object", JSONL_HINT)
        start, end, label = raw.get("start"), raw.get("end"), raw.get("entity_type")
        if not _is_int(start) or not _is_int(end) or not 0 <= start < end <= len(tokens):
            raise ConversionError(
                path, lineno,
                f"{what} has start={start!r}, end={end!r}, but the sentence has {len(tokens)} tokens",
                "Offsets must be token indices with 0 <= start < end <= len(tokens), end exclusive",
            )
        if not isinstance(label, str) or not label.strip():
            raise ConversionError(path, lineno, f"{what} has entity_type {label!r}", JSONL_HINT)
        text = raw.get("text")
        span_text = " ".join(tokens[start:end])
        if text is not None and text != span_text:
            raise ConversionError(
                path, lineno,
                f"{what} text {text!r} does not match tokens[{start}:{end}] = {span_text!r}",
                "Check the offsets (end is exclusive) or the text of the mention",
            )
        mentions.append((start, end, map_label(label, label_map, drop_empty=False)))
    unique, duplicates = normalize_mentions(mentions)
    doc_id = obj.get("doc_id")
    record = ParsedDoc(
        words=list(tokens), mentions=unique, line=lineno,
        doc_id=None if doc_id is None else str(doc_id),
    )
    return record, duplicates


def read_genia_layered(path: PathLike, label_map: LabelMap = None) -> ParsedCorpus:
    """Read Ju et al. layered ``token<TAB>L1<TAB>L2...`` IOB2 (union of the layers)."""
    return read_tagged_file(
        path, sep="\t", n_columns=None, tag_columns=None, label_map=label_map,
        layout="token<TAB>L1<TAB>L2...", min_columns=2,
    )


def read_genia_mlc(paths: Sequence[PathLike], label_map: LabelMap = None) -> ParsedCorpus:
    """Merge per-type ``token tag`` files of one split into one nested corpus.

    Raises ConversionError if the files differ in sentences or tokens.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConversionError("genia-mlc", None, "no input files", "Pass the per-type files of one split")
    per_file = [
        read_token_blocks(p, sep=None, n_columns=2, layout="token tag") for p in paths
    ]
    reference, ref_blocks = paths[0], per_file[0]
    for path, blocks in zip(paths[1:], per_file[1:]):
        _check_same_tokens(reference, ref_blocks, path, blocks)
    corpus = ParsedCorpus(paths=[str(p) for p in paths], docs=[])
    for i, ref_block in enumerate(ref_blocks):
        mentions: List[Mention] = []
        for path, blocks in zip(paths, per_file):
            found, repairs, _ = block_mentions(path, blocks[i], [1], label_map)
            mentions.extend(found)
            corpus.repairs += repairs
        unique, duplicates = normalize_mentions(mentions)
        corpus.duplicates += duplicates
        corpus.docs.append(
            ParsedDoc(words=ref_block.words, mentions=unique, line=ref_block.line, doc_id=ref_block.doc_id)
        )
    return corpus


def _check_same_tokens(
    ref_path: Path, ref_blocks: List[TokenBlock], path: Path, blocks: List[TokenBlock]
) -> None:
    """Raise naming both files and lines at the first sentence/token that differs."""
    hint = (
        "The per-type files of one split must have identical tokens sentence by sentence; "
        "pass the files of one split only"
    )
    for ref, other in zip(ref_blocks, blocks):
        for j, (a, b) in enumerate(zip(ref.words, other.words)):
            if a != b:
                raise ConversionError(
                    path, other.lines[j],
                    f"token {b!r} differs from {a!r} at {ref_path}:{ref.lines[j]}", hint,
                )
        if len(ref.words) != len(other.words):
            n = min(len(ref.words), len(other.words))
            raise ConversionError(
                path, other.lines[n - 1],
                f"sentence starting on line {other.line} has {len(other.words)} tokens, but the one "
                f"starting at {ref_path}:{ref.line} has {len(ref.words)}", hint,
            )
    if len(ref_blocks) != len(blocks):
        shorter, longer = (path, ref_path) if len(blocks) < len(ref_blocks) else (ref_path, path)
        n_short, n_long = sorted((len(blocks), len(ref_blocks)))
        extra = (ref_blocks if longer == ref_path else blocks)[n_short]
        raise ConversionError(
            longer, extra.line,
            f"sentence {n_short + 1} has no counterpart in {shorter}, which has {n_short} sentences "
            f"(this file has {n_long})", hint,
        )
