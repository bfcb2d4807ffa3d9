"""Annotate a text collection with a trained pipeline: ``python -m spacy_sru_ner annotate``.

Input: JSONL (one ``{"id": ..., "text": ...}`` object per line; the field names
can be changed) or PubTator (``PMID|t|title`` / ``PMID|a|abstract`` blocks; the
text is ``title + " " + abstract`` and any annotation lines in the input are
ignored).

Output: JSONL, one line per document::

    {"id": ..., ["text": ...,] "entities": [{"start": 0, "end": 4, "label": "protein", "score": 0.98, "text": "IL-2"}]}

with character offsets into the text (end exclusive), or PubTator
(``PMID<TAB>start<TAB>end<TAB>mention<TAB>label<TAB>score`` lines after the
title and abstract lines; line breaks and tabs inside the text are written as
spaces, which keeps every offset valid; a text from JSONL becomes the title,
with an empty abstract line).

The run is resumable: if the output file exists, the ids it already holds are
skipped and the new documents are appended; every document is written and
flushed as soon as it is annotated, and an incomplete last record left by a
killed run is removed before appending. Bad input lines (invalid JSON or UTF-8,
a missing or ill-typed id or text, a duplicate id, a stray PubTator line) are
reported with their line number on stderr, counted and skipped; the run goes
on and still succeeds (the summary reports the bad count).
"""
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple, Union

INPUT_FORMATS = ("jsonl", "pubtator")
OUTPUT_FORMATS = ("jsonl", "pubtator")
MAX_SHOWN_BAD = 50  # bad-line messages printed; the rest are only counted
SCORE_DIGITS = 4

PathLike = Union[str, Path]
DocId = Union[str, int]


class AnnotateError(Exception):
    """A problem that stops the run (unreadable model, input or output)."""


@dataclass
class Record:
    """One document to annotate. PubTator: the title is ``text[:title_len]``."""

    line: int
    id: DocId
    text: str
    title_len: Optional[int] = None


@dataclass
class BadRecord:
    line: int
    message: str


@dataclass
class AnnotateStats:
    input: str = ""
    output: str = ""
    read: int = 0  # records read from the input, bad ones included
    annotated: int = 0
    done: int = 0  # skipped: their id was already in the output
    bad: int = 0
    entities: int = 0
    in_output_before: int = 0  # documents found in the output when the run started
    truncated_bytes: int = 0  # incomplete last record of a killed run, removed
    seconds: float = 0.0
    bad_messages: List[str] = field(default_factory=list)  # the first MAX_SHOWN_BAD

    def summary(self) -> str:
        rate = f", {self.annotated / self.seconds:.1f} docs/s" if self.seconds > 0 and self.annotated else ""
        return (
            f"read {self.read}, annotated {self.annotated} ({self.entities} entities), "
            f"skipped as done {self.done}, bad {self.bad} -> {self.output} "
            f"({self.seconds:.1f} s{rate})"
        )

    def to_dict(self) -> Dict[str, Any]:
        return {
            "input": self.input, "output": self.output, "read": self.read, "annotated": self.annotated,
            "done": self.done, "bad": self.bad, "entities": self.entities,
            "in_output_before": self.in_output_before, "truncated_bytes": self.truncated_bytes,
            "seconds": self.seconds, "bad_messages": list(self.bad_messages),
        }


def id_key(doc_id: DocId) -> str:
    """Ids are compared as strings: ``1`` and ``"1"`` are the same document."""
    return str(doc_id)


def _check_id(value: Any, name: str) -> Optional[str]:
    """Why ``value`` is not a usable id, or None."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return f'"{name}" must be a string or an integer, got {_json_type(value)}'
    if isinstance(value, str) and not value.strip():
        return f'"{name}" is empty'
    return None


def _json_type(value: Any) -> str:
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


def _iter_raw_lines(path: PathLike) -> Iterator[Tuple[int, Optional[str], Optional[str]]]:
    """Yield (1-based line number, line without line break or None, decoding error or None)."""
    with Path(path).open("rb") as file_:
        for lineno, raw in enumerate(file_, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield lineno, None, f"not valid UTF-8 ({err.reason} at byte {err.start})"
                continue
            if lineno == 1:
                line = line.lstrip("\ufeff")
            yield lineno, line.rstrip("\r\n"), None


# --- readers ---------------------------------------------------------------
def read_jsonl(
    path: PathLike, id_field: str = "id", text_field: str = "text"
) -> Iterator[Union[Record, BadRecord]]:
    """Records of a JSONL file; a line that cannot be used gives a BadRecord. Blank lines are skipped."""
    for lineno, line, error in _iter_raw_lines(path):
        if error is not None:
            yield BadRecord(lineno, error)
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            yield BadRecord(lineno, f"invalid JSON ({err.msg} at column {err.colno})")
            continue
        if not isinstance(obj, dict):
            yield BadRecord(lineno, f"expected a JSON object, got {_json_type(obj)}")
            continue
        missing = [name for name in (id_field, text_field) if name not in obj]
        if missing:
            yield BadRecord(lineno, "missing " + " and ".join(f'"{name}"' for name in missing))
            continue
        problem = _check_id(obj[id_field], id_field)
        if problem:
            yield BadRecord(lineno, problem)
            continue
        text = obj[text_field]
        if not isinstance(text, str):
            yield BadRecord(lineno, f'"{text_field}" must be a string, got {_json_type(text)}')
            continue
        yield Record(lineno, obj[id_field], text)


def read_pubtator(path: PathLike) -> Iterator[Union[Record, BadRecord]]:
    """Documents of a PubTator file (title + " " + abstract); annotation and
    relation lines are ignored, lines that fit no document give a BadRecord."""
    from .convert.pubtator import TEXT_LINE

    current: Optional[Dict[str, Any]] = None

    def finish(doc: Dict[str, Any]) -> Record:
        title, abstract = doc["title"], doc["abstract"]
        text = title if abstract is None else f"{title} {abstract}"
        return Record(doc["line"], doc["pmid"], text, title_len=len(title))

    for lineno, line, error in _iter_raw_lines(path):
        if error is not None:
            yield BadRecord(lineno, error)
            continue
        if not line.strip():
            if current is not None:
                yield finish(current)
            current = None
            continue
        match = TEXT_LINE.match(line)
        if match and match.group(1).strip():
            pmid, kind, text = match.group(1).strip(), match.group(2), match.group(3)
            if kind == "t":
                if current is not None:
                    yield finish(current)
                current = {"pmid": pmid, "line": lineno, "title": text, "abstract": None}
            elif current is None or current["pmid"] != pmid or current["abstract"] is not None:
                yield BadRecord(lineno, f"abstract line for {pmid} does not follow the title line of {pmid}")
            else:
                current["abstract"] = text
            continue
        columns = line.split("\t")
        if current is None:
            yield BadRecord(lineno, f"line outside a document (no 'PMID|t|title' line before it): {line[:80]!r}")
        elif columns[0].strip() != current["pmid"] or len(columns) < 4:
            yield BadRecord(
                lineno,
                f"not a title, abstract, annotation or relation line of document {current['pmid']}: {line[:80]!r}",
            )
        # else: an annotation or relation line of the current document: ignored
    if current is not None:
        yield finish(current)


def count_records(path: PathLike, input_format: str) -> Optional[int]:
    """Number of records in the input (for the progress bar), by a fast byte scan."""
    try:
        total = 0
        with Path(path).open("rb") as file_:
            if input_format == "pubtator":
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


# --- resuming --------------------------------------------------------------
def scan_output(path: PathLike, output_format: str) -> Tuple[Set[str], int]:
    """Ids already in an existing output and the byte offset where its complete records end.

    A killed run can leave an incomplete last record (JSONL: a line without its
    line break; PubTator: a block without its closing blank line); it lies past
    the returned offset. Any other unreadable content raises AnnotateError.
    """
    done: Set[str] = set()
    end = 0
    offset = 0
    path = Path(path)
    if output_format == "jsonl":
        with path.open("rb") as file_:
            for lineno, raw in enumerate(file_, 1):
                offset += len(raw)
                if not raw.endswith(b"\n"):
                    break  # incomplete last line
                if raw.strip():
                    try:
                        obj = json.loads(raw.decode("utf-8"))
                        key = id_key(obj["id"])
                    except (ValueError, KeyError, TypeError):
                        raise AnnotateError(
                            f"{path}:{lineno}: the existing output has a line that is not an annotate "
                            "result; fix it or remove the file to start over"
                        ) from None
                    done.add(key)
                end = offset
        return done, end
    # pubtator: a document counts as done once its closing blank line is there
    pmid: Optional[str] = None
    with path.open("rb") as file_:
        for lineno, raw in enumerate(file_, 1):
            offset += len(raw)
            if not raw.endswith(b"\n"):
                break
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not line.strip():
                if pmid is not None:
                    done.add(pmid)
                pmid = None
                end = offset
                continue
            if pmid is None:
                head, sep, _ = line.partition("|t|")
                if not sep or "\t" in head:
                    raise AnnotateError(
                        f"{path}:{lineno}: the existing output has a document that does not start "
                        "with a 'PMID|t|title' line; fix it or remove the file to start over"
                    )
                pmid = head.strip()
    return done, end


def prepare_output(path: PathLike, output_format: str, log: Callable[[str], None]) -> Tuple[Set[str], int]:
    """Ids already in ``path`` (none if it does not exist), after removing an incomplete last record."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        return set(), 0
    if path.is_dir():
        raise AnnotateError(f"{path} is a folder, not an output file")
    done, end = scan_output(path, output_format)
    size = path.stat().st_size
    truncated = size - end
    if truncated:
        with path.open("r+b") as file_:
            file_.truncate(end)
        log(f"{path}: removed an incomplete last record ({truncated} bytes) left by an interrupted run")
    return done, truncated


# --- the run ---------------------------------------------------------------
def resolve_spans_key(nlp, spans_key: Optional[str]) -> str:
    """``spans_key``, or the key of the pipeline's first ``sru_ner`` component."""
    if spans_key:
        return spans_key
    from .contract import DEFAULT_SPANS_KEY
    from .pipe import SlotNER

    for _, pipe in nlp.pipeline:
        if isinstance(pipe, SlotNER):
            return pipe.key
    return DEFAULT_SPANS_KEY


def load_model(model: str):
    """``spacy.load`` with the ``sru_ner`` factory registered; AnnotateError if it fails."""
    import spacy

    from . import pipe  # noqa: F401  registers the factory without entry points

    try:
        return spacy.load(model)
    except (OSError, IOError, ValueError) as err:
        raise AnnotateError(f"cannot load the model {model!r}: {err}") from None


class _Progress:
    """tqdm if installed, else a counter on stderr every few seconds; ``write`` keeps the bar intact."""

    def __init__(self, total: Optional[int], enabled: bool, desc: str) -> None:
        self.enabled = enabled
        self.bar = None
        self.n = 0
        self.total = total
        self.desc = desc
        self.last = 0.0
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc=desc, unit="doc", file=sys.stderr, mininterval=0.5, dynamic_ncols=True)

    def update(self, stats: AnnotateStats) -> None:
        self.n += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
            now = time.monotonic()
            if now - self.last > 1.0:
                self.last = now
                self.bar.set_postfix(annotated=stats.annotated, done=stats.done, bad=stats.bad, refresh=False)
            return
        now = time.monotonic()
        if now - self.last > 5.0:
            self.last = now
            of = f"/{self.total}" if self.total else ""
            print(f"{self.desc}: {self.n}{of} docs (annotated {stats.annotated}, done {stats.done}, bad {stats.bad})",
                  file=sys.stderr, flush=True)

    def write(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr, flush=True)

    def close(self, stats: AnnotateStats) -> None:
        if self.bar is not None:
            self.bar.set_postfix(annotated=stats.annotated, done=stats.done, bad=stats.bad, refresh=False)
            self.bar.close()


@dataclass
class _Meta:
    """What travels with a text through ``nlp.pipe(as_tuples=True)`` (also to worker processes)."""

    id: DocId
    line: int
    title_len: Optional[int]


def annotate_file(
    nlp,
    input_path: PathLike,
    output_path: PathLike,
    *,
    input_format: str = "jsonl",
    output_format: str = "jsonl",
    n_process: int = 1,
    batch_size: int = 64,
    spans_key: Optional[str] = None,
    text_field: str = "text",
    id_field: str = "id",
    include_text: bool = False,
    progress: bool = True,
    log: Optional[Callable[[str], None]] = None,
) -> AnnotateStats:
    """Annotate ``input_path`` into ``output_path`` with the loaded pipeline ``nlp`` (see the module doc)."""
    if input_format not in INPUT_FORMATS:
        raise AnnotateError(f"unknown input format {input_format!r}; use one of {', '.join(INPUT_FORMATS)}")
    if output_format not in OUTPUT_FORMATS:
        raise AnnotateError(f"unknown output format {output_format!r}; use one of {', '.join(OUTPUT_FORMATS)}")
    if n_process == 0 or n_process < -1:
        raise AnnotateError(f"n_process must be a positive number or -1 (all CPUs), got {n_process}")
    if batch_size < 1:
        raise AnnotateError(f"batch_size must be positive, got {batch_size}")
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise AnnotateError(f"input file not found: {input_path}")
    if output_path.exists() and output_path.resolve() == input_path.resolve():
        raise AnnotateError(f"the output {output_path} is the input file")
    spans_key = resolve_spans_key(nlp, spans_key)
    stats = AnnotateStats(input=str(input_path), output=str(output_path))
    start_time = time.perf_counter()
    bar = _Progress(count_records(input_path, input_format) if progress else None, progress, input_path.name)
    emit = log or bar.write

    def report_bad(line: int, message: str) -> None:
        stats.bad += 1
        text = f"{input_path}:{line}: {message}"
        if len(stats.bad_messages) < MAX_SHOWN_BAD:
            stats.bad_messages.append(text)
            emit(f"✘ {text}")
            if len(stats.bad_messages) == MAX_SHOWN_BAD:
                emit(f"(further bad lines of {input_path} are counted but not shown)")
        bar.update(stats)

    done, stats.truncated_bytes = prepare_output(output_path, output_format, emit)
    stats.in_output_before = len(done)
    if input_format == "jsonl":
        records: Iterable[Union[Record, BadRecord]] = read_jsonl(input_path, id_field, text_field)
    else:
        records = read_pubtator(input_path)

    def to_annotate() -> Iterator[Tuple[str, _Meta]]:
        seen: Dict[str, int] = {}
        for item in records:
            stats.read += 1
            if isinstance(item, BadRecord):
                report_bad(item.line, item.message)
                continue
            key = id_key(item.id)
            if key in seen:
                report_bad(item.line, f"duplicate id {item.id!r} (first on line {seen[key]})")
                continue
            seen[key] = item.line
            if output_format == "pubtator":
                problem = pubtator_id_problem(item.id)
                if problem:
                    report_bad(item.line, problem)
                    continue
            if key in done:
                stats.done += 1
                bar.update(stats)
                continue
            if len(item.text) > nlp.max_length:
                report_bad(
                    item.line,
                    f"text of {item.id!r} has {len(item.text)} characters, more than nlp.max_length "
                    f"({nlp.max_length}); split it or raise the limit (annotate --max-chars)",
                )
                continue
            yield item.text, _Meta(item.id, item.line, item.title_len)

    try:
        with output_path.open("a", encoding="utf-8", newline="\n") as out:
            docs = nlp.pipe(to_annotate(), as_tuples=True, batch_size=batch_size, n_process=n_process)
            for doc, meta in docs:
                if spans_key not in doc.spans:
                    raise AnnotateError(
                        f"the pipeline wrote no doc.spans[{spans_key!r}] (its components: "
                        f"{', '.join(nlp.pipe_names) or 'none'}); pass the right --spans-key"
                    )
                entities = doc_entities(doc, spans_key)
                if output_format == "jsonl":
                    out.write(format_jsonl(meta.id, doc.text, entities, include_text))
                else:
                    out.write(format_pubtator(meta.id, doc.text, meta.title_len, entities))
                out.flush()
                stats.annotated += 1
                stats.entities += len(entities)
                bar.update(stats)
    finally:
        bar.close(stats)
        stats.seconds = time.perf_counter() - start_time
    return stats


def annotate(
    model: str,
    input_path: PathLike,
    output_path: PathLike,
    max_chars: Optional[int] = None,
    **kwargs: Any,
) -> AnnotateStats:
    """Load ``model`` (a package name or path) and run :func:`annotate_file`.

    ``max_chars`` sets ``nlp.max_length`` (texts longer than it are reported as bad)."""
    nlp = load_model(model)
    if max_chars:
        nlp.max_length = max_chars
    return annotate_file(nlp, input_path, output_path, **kwargs)


def read_output(path: PathLike, output_format: str = "jsonl") -> List[Dict[str, Any]]:
    """Read an annotate output back: ``[{"id", "text"?, "entities"}]`` (PubTator: id as string, text = title + " " + abstract)."""
    path = Path(path)
    if output_format == "jsonl":
        with path.open(encoding="utf-8") as file_:
            return [json.loads(line) for line in file_ if line.strip()]
    results: List[Dict[str, Any]] = []
    current: Optional[Dict[str, Any]] = None
    for _, line, _ in _iter_raw_lines(path):
        line = line or ""
        if not line.strip():
            if current is not None:
                results.append(current)
            current = None
            continue
        if current is None:
            pmid, _, title = line.partition("|t|")
            current = {"id": pmid, "text": title, "entities": []}
        elif line.startswith(f"{current['id']}|a|"):
            current["text"] += " " + line.partition("|a|")[2]
        else:
            pmid, start, end, mention, label, score = line.split("\t")
            current["entities"].append(
                {"start": int(start), "end": int(end), "label": label,
                 "score": float(score) if score else None, "text": mention}
            )
    if current is not None:
        results.append(current)
    return results


def print_summary(stats: AnnotateStats, out=None) -> None:
    out = out or sys.stdout
    print(f"✔ {stats.summary()}", file=out)
    if stats.in_output_before or stats.truncated_bytes:
        print(
            f"  resumed: {stats.in_output_before} documents were already in the output"
            + (f"; removed an incomplete last record ({stats.truncated_bytes} bytes)" if stats.truncated_bytes else ""),
            file=out,
        )
    if stats.bad:
        print(
            f"⚠ {stats.bad} bad input record(s) skipped (messages on stderr); they are not in the output "
            "and the exit code is still 0",
            file=out,
        )

