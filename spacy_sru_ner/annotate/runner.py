"""The annotate run: load a pipeline, read the input, skip what the output holds, write as it goes."""
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ..formats import TEXT_FORMATS, PathLike, TextFormat
from .io import AnnotateError, BadRecord, DocId, count_records, doc_entities, format_jsonl, format_pubtator
from .io import id_key, pubtator_id_problem, read_records
from .resume import prepare_output

MAX_SHOWN_BAD = 50  # bad-line messages printed; the rest are only counted


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


def check_format(fmt: str, role: str) -> None:
    """AnnotateError unless ``fmt`` is one of TEXT_FORMATS (``role``: "input" or "output")."""
    if fmt not in TEXT_FORMATS:
        raise AnnotateError(f"unknown {role} format {fmt!r}; use one of {', '.join(TEXT_FORMATS)}")


def resolve_spans_key(nlp, spans_key: Optional[str]) -> str:
    """``spans_key``, or the key of the pipeline's first ``sru_ner`` component."""
    if spans_key:
        return spans_key
    from ..contract import DEFAULT_SPANS_KEY
    from ..pipe import SlotNER

    for _, pipe in nlp.pipeline:
        if isinstance(pipe, SlotNER):
            return pipe.key
    return DEFAULT_SPANS_KEY


def load_model(model: str):
    """``spacy.load`` with the ``sru_ner`` factory registered; AnnotateError if it fails."""
    import spacy

    from .. import pipe  # noqa: F401  registers the factory without entry points

    try:
        return spacy.load(model)
    except (OSError, IOError, ValueError) as err:
        raise AnnotateError(f"cannot load the model {model!r}: {err}") from None


class _Progress:
    """A tqdm bar on stderr (spaCy installs tqdm); ``write`` keeps the bar intact."""

    def __init__(self, total: Optional[int], enabled: bool, desc: str) -> None:
        from tqdm import tqdm

        self.enabled = enabled
        self.n = 0
        self.last = 0.0
        self.bar = None
        if enabled:
            self.bar = tqdm(total=total, desc=desc, unit="doc", file=sys.stderr, mininterval=0.5, dynamic_ncols=True)

    def update(self, stats: AnnotateStats) -> None:
        self.n += 1
        if self.bar is None:
            return
        self.bar.update(1)
        now = time.monotonic()
        if now - self.last > 1.0:
            self.last = now
            self.bar.set_postfix(annotated=stats.annotated, done=stats.done, bad=stats.bad, refresh=False)

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
    input_format: str = TextFormat.jsonl.value,
    output_format: str = TextFormat.jsonl.value,
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
    check_format(input_format, "input")
    check_format(output_format, "output")
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
    records = read_records(input_path, input_format, id_field, text_field)

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
            if output_format == TextFormat.pubtator:
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
                if output_format == TextFormat.jsonl:
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
