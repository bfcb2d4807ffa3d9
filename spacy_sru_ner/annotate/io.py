"""Reading the collection to annotate and writing the results (JSONL or PubTator).

The input is read by the lenient readers of :mod:`spacy_sru_ner.formats`: a
line that cannot be used comes back as a :class:`BadRecord` and reading goes on.
"""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Union

from ..formats import BadLine, PathLike, TextFormat, iter_json_lines, iter_pubtator, json_type

SCORE_DIGITS = 4

DocId = Union[str, int]
# a line of the input that cannot be annotated: line number and message
BadRecord = BadLine


class AnnotateError(Exception):
    """A problem that stops the run (unreadable model, input or output)."""


@dataclass
class Record:
    """One document to annotate. PubTator: the title is ``text[:title_len]``."""

    line: int
    id: DocId
    text: str
    title_len: Optional[int] = None


def id_key(doc_id: DocId) -> str:
    """Ids are compared as strings: ``1`` and ``"1"`` are the same document."""
    return str(doc_id)


def _check_id(value: Any, name: str) -> Optional[str]:
    """Why ``value`` is not a usable id, or None."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return f'"{name}" must be a string or an integer, got {json_type(value)}'
    if isinstance(value, str) and not value.strip():
        return f'"{name}" is empty'
    return None


# --- readers ---------------------------------------------------------------
def read_jsonl(
    path: PathLike, id_field: str = "id", text_field: str = "text"
) -> Iterator[Union[Record, BadRecord]]:
    """Records of a JSONL file; a line that cannot be used gives a BadRecord. Blank lines are skipped."""
    for item in iter_json_lines(path, strict=False):
        yield item if isinstance(item, BadRecord) else _jsonl_record(*item, id_field, text_field)


def _jsonl_record(lineno: int, obj: Any, id_field: str, text_field: str) -> Union[Record, BadRecord]:
    if not isinstance(obj, dict):
        return BadRecord(lineno, f"expected a JSON object, got {json_type(obj)}")
    missing = [name for name in (id_field, text_field) if name not in obj]
    if missing:
        return BadRecord(lineno, "missing " + " and ".join(f'"{name}"' for name in missing))
    problem = _check_id(obj[id_field], id_field)
    if problem:
        return BadRecord(lineno, problem)
    text = obj[text_field]
    if not isinstance(text, str):
        return BadRecord(lineno, f'"{text_field}" must be a string, got {json_type(text)}')
    return Record(lineno, obj[id_field], text)


def read_pubtator(path: PathLike) -> Iterator[Union[Record, BadRecord]]:
    """Documents of a PubTator file (title + " " + abstract); annotation and
    relation lines are ignored, lines that fit no document give a BadRecord."""
    for item in iter_pubtator(path, strict=False, annotations=False):
        yield item if isinstance(item, BadRecord) else Record(item.line, item.pmid, item.text, len(item.title))


def read_records(
    path: PathLike, input_format: str, id_field: str = "id", text_field: str = "text"
) -> Iterator[Union[Record, BadRecord]]:
    """Records of an input file in ``input_format`` (``id_field``/``text_field``: JSONL only)."""
    if input_format == TextFormat.pubtator:
        return read_pubtator(path)
    return read_jsonl(path, id_field, text_field)


def count_records(path: PathLike, input_format: str) -> Optional[int]:
    """Number of records in the input (for the progress bar), by a fast byte scan."""
    try:
        total = 0
        with Path(path).open("rb") as file_:
            if input_format == TextFormat.pubtator:
                for raw in file_:
                    head = raw[:64]
                    if b"|t|" in head and b"\t" not in head.split(b"|t|")[0]:
                        total += 1
            else:
                for raw in file_:
                    if raw.strip():
                        total += 1
        return total
    except OSError:
        return None


# --- writers ---------------------------------------------------------------
def doc_entities(doc, spans_key: str) -> List[Dict[str, Any]]:
    """Entities of ``doc.spans[spans_key]`` with character offsets and scores, sorted by offsets."""
    group = doc.spans[spans_key]
    scores = group.attrs.get("scores")
    entities = []
    for i, span in enumerate(group):
        score = None
        if scores is not None and i < len(scores):
            score = round(float(scores[i]), SCORE_DIGITS)
        entities.append(
            {"start": span.start_char, "end": span.end_char, "label": span.label_, "score": score, "text": span.text}
        )
    entities.sort(key=lambda e: (e["start"], -e["end"], e["label"]))
    return entities


def format_jsonl(record_id: DocId, text: str, entities: List[Dict[str, Any]], include_text: bool) -> str:
    obj: Dict[str, Any] = {"id": record_id}
    if include_text:
        obj["text"] = text
    obj["entities"] = entities
    return json.dumps(obj, ensure_ascii=False) + "\n"


def _one_line(text: str) -> str:
    """Line breaks and tabs as spaces: same length, so offsets stay valid."""
    return text.replace("\r", " ").replace("\n", " ").replace("\t", " ")


def format_pubtator(
    record_id: DocId, text: str, title_len: Optional[int], entities: List[Dict[str, Any]]
) -> str:
    """A PubTator block; a text without a title (JSONL input) is written as the title with an empty abstract."""
    pmid = id_key(record_id)
    if title_len is None or title_len > len(text):
        title, abstract = text, ""
    else:
        title, abstract = text[:title_len], text[title_len + 1:]
    lines = [f"{pmid}|t|{_one_line(title)}", f"{pmid}|a|{_one_line(abstract)}"]
    for ent in entities:
        mention = _one_line(ent["text"])
        score = "" if ent["score"] is None else f"{ent['score']:.{SCORE_DIGITS}f}"
        lines.append(f"{pmid}\t{ent['start']}\t{ent['end']}\t{mention}\t{ent['label']}\t{score}")
    return "\n".join(lines) + "\n\n"


def pubtator_id_problem(record_id: DocId) -> Optional[str]:
    pmid = id_key(record_id)
    if any(ch in pmid for ch in "|\t\r\n"):
        return f"id {pmid!r} cannot be written to PubTator (it contains '|', a tab or a line break)"
    return None


# --- reading an output back (tests) ------------------------------------------
def read_output(path: PathLike, output_format: str = TextFormat.jsonl.value) -> List[Dict[str, Any]]:
    """Read an annotate output back: ``[{"id", "text"?, "entities"}]`` (PubTator: id as string, text = title + " " + abstract)."""
    path = Path(path)
    if output_format == TextFormat.jsonl:
        with path.open(encoding="utf-8") as file_:
            return [json.loads(line) for line in file_ if line.strip()]
    results: List[Dict[str, Any]] = []
    for document in iter_pubtator(path):
        entities = [
            {"start": ann.start, "end": ann.end, "label": ann.label,
             "score": float(ann.extra[0]) if ann.extra and ann.extra[0] else None, "text": ann.mention}
            for ann in document.annotations
        ]
        results.append({"id": document.pmid, "text": document.text, "entities": entities})
    return results
