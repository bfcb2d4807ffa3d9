"""Shared pieces of the corpus converters: records, counting, Doc building, writing.

Every format reader turns its input into a :class:`ParsedCorpus`: a list of
:class:`ParsedDoc` records (tokens + token-offset mentions) plus bookkeeping
(repaired ``I-`` tags, realigned offsets, ...). :func:`write_corpus` builds
spaCy ``Doc`` objects from the records, writes them to a ``.spacy`` file
(``DocBin``), reads the file back and checks that the counts of the written
file equal the counts of the records, so a silent loss of sentences, tokens or
mentions cannot happen.
"""
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab
from wasabi import Printer

from ..contract import DEFAULT_SPANS_KEY, get_annotated_labels, get_corpus_name, set_annotated_labels
from ..contract import set_corpus_name
from ..corpora import cached_msgpack_decoders
from ..formats import ConversionError, PathLike

# doc.user_data key holding the id of the source document a sentence comes from
# (-DOCSTART- position, GENIA doc_id, PubTator PMID). Absent where the format
# has no documents.
DOC_ID_KEY = "sru_ner.doc_id"

# A mention in token offsets: (start, end exclusive, label).
Mention = Tuple[int, int, str]
LabelMap = Optional[Dict[str, str]]


@dataclass
class ParsedDoc:
    """One future ``Doc``: tokens, mentions and where it came from."""

    words: List[str]
    mentions: List[Mention]
    line: int
    spaces: Optional[List[bool]] = None
    sent_starts: Optional[List[bool]] = None
    doc_id: Optional[str] = None

    @property
    def n_sentences(self) -> int:
        if self.sent_starts is None:
            return 1
        return max(1, sum(1 for i, s in enumerate(self.sent_starts) if s or i == 0))


@dataclass
class ParsedCorpus:
    """What a reader found in its input file(s)."""

    paths: List[str]
    docs: List[ParsedDoc]
    repairs: int = 0
    realigned: int = 0
    duplicates: int = 0
    crossing: int = 0
    merged_sentences: int = 0
    skipped_relations: int = 0

    @property
    def labels(self) -> Set[str]:
        return {m[2] for doc in self.docs for m in doc.mentions}


@dataclass
class CorpusCounts:
    """Counts of one corpus side (read from the input or re-read from the output)."""

    documents: int = 0
    sentences: int = 0
    docs: int = 0
    tokens: int = 0
    entities: Counter = field(default_factory=Counter)
    nested_inner: int = 0
    overlapping_docs: int = 0

    @property
    def mentions(self) -> int:
        return sum(self.entities.values())


@dataclass
class ConversionStats:
    """Result of a conversion: counts read and written, plus what was repaired.

    ``read`` counts the records that were converted (after ``limit``);
    ``written`` counts the ``.spacy`` file re-read from disk (None if nothing
    was written). ``documents``, ``sentences``, ``tokens``, ``entities`` and
    ``nested_inner`` are shortcuts to ``read``. ``labels`` (the annotated
    label set) and the repair counts (``repairs``: I- tags starting a mention,
    ``realigned``, ``duplicates``, ``crossing``/``merged_sentences``,
    ``skipped_relations``) cover the whole input, also under ``limit``.
    """

    fmt: str
    inputs: List[str]
    output: Optional[str]
    read: CorpusCounts
    written: Optional[CorpusCounts]
    labels: List[str]
    spans_key: str = DEFAULT_SPANS_KEY
    repairs: int = 0
    realigned: int = 0
    duplicates: int = 0
    crossing: int = 0
    merged_sentences: int = 0
    skipped_relations: int = 0
    limit: Optional[int] = None
    truncated_from: Optional[int] = None

    @property
    def documents(self) -> int:
        return self.read.documents

    @property
    def sentences(self) -> int:
        return self.read.sentences

    @property
    def tokens(self) -> int:
        return self.read.tokens

    @property
    def entities(self) -> Counter:
        return self.read.entities

    @property
    def mentions(self) -> int:
        return self.read.mentions

    @property
    def nested_inner(self) -> int:
        return self.read.nested_inner


# ---------------------------------------------------------------------------
# Small helpers shared by the readers


def normalize_mentions(mentions: Iterable[Mention]) -> Tuple[List[Mention], int]:
    """Deduplicate and sort mentions by (start, end, label); return (mentions, n_duplicates)."""
    mentions = list(mentions)
    unique = sorted(set(mentions))
    return unique, len(mentions) - len(unique)


def count_nested_inner(mentions: Sequence[Tuple[int, int, str]]) -> int:
    """Count mentions lying inside another mention (of any label) with other boundaries."""
    bounds = {(start, end) for start, end, _ in mentions}
    n = 0
    for start, end, _ in mentions:
        if any(s <= start and end <= e and (s, e) != (start, end) for s, e in bounds):
            n += 1
    return n


def has_overlap(mentions: Sequence[Tuple[int, int, str]]) -> bool:
    """Whether any two mentions share a token (so they cannot all be ``doc.ents``)."""
    ordered = sorted(mentions)
    return any(nxt[0] < cur[1] for cur, nxt in zip(ordered, ordered[1:]))


# ---------------------------------------------------------------------------
# Counting


def count_parsed(docs: Sequence[ParsedDoc]) -> CorpusCounts:
    """Count what the readers produced."""
    counts = CorpusCounts(docs=len(docs))
    doc_ids = set()
    for doc in docs:
        if doc.doc_id is not None:
            doc_ids.add(doc.doc_id)
        counts.sentences += doc.n_sentences
        counts.tokens += len(doc.words)
        counts.entities.update(label for _, _, label in doc.mentions)
        counts.nested_inner += count_nested_inner(doc.mentions)
        counts.overlapping_docs += has_overlap(doc.mentions)
    counts.documents = len(doc_ids)
    return counts


def count_docs(docs: Iterable[Doc], spans_key: str = DEFAULT_SPANS_KEY) -> CorpusCounts:
    """Count spaCy Docs the way :func:`count_parsed` counts records."""
    counts = CorpusCounts()
    doc_ids = set()
    for doc in docs:
        counts.docs += 1
        doc_id = doc.user_data.get(DOC_ID_KEY)
        if doc_id is not None:
            doc_ids.add(doc_id)
        if doc.has_annotation("SENT_START"):
            counts.sentences += len(list(doc.sents))
        else:
            counts.sentences += 1
        counts.tokens += len(doc)
        mentions = [(s.start, s.end, s.label_) for s in doc.spans.get(spans_key, [])]
        counts.entities.update(label for _, _, label in mentions)
        counts.nested_inner += count_nested_inner(mentions)
        counts.overlapping_docs += has_overlap(mentions)
    counts.documents = len(doc_ids)
    return counts


# ---------------------------------------------------------------------------
# Docs


def make_doc(
    vocab: Vocab,
    record: ParsedDoc,
    labels: Iterable[str],
    spans_key: str = DEFAULT_SPANS_KEY,
    corpus_name: Optional[str] = None,
) -> Doc:
    """Build one ``Doc`` from a record.

    All mentions go to ``doc.spans[spans_key]`` (sorted by start, end, label).
    If they do not overlap they are also the ``doc.ents`` (every other token
    is explicitly outside, so spaCy's ``ner`` can learn from the doc); if they
    overlap, ``doc.ents`` stays empty with missing (not "O") annotation.
    """
    spaces = record.spaces
    if spaces is None:
        spaces = [True] * len(record.words)
        if spaces:
            spaces[-1] = False
    doc = Doc(vocab, words=record.words, spaces=spaces, sent_starts=record.sent_starts)
    spans = [Span(doc, start, end, label=label) for start, end, label in sorted(record.mentions)]
    doc.spans[spans_key] = spans
    if not has_overlap(record.mentions):
        doc.set_ents(spans, default="outside")
    set_annotated_labels(doc, labels)
    if corpus_name:
        set_corpus_name(doc, corpus_name)
    if record.doc_id is not None:
        doc.user_data[DOC_ID_KEY] = record.doc_id
    return doc


def iter_docs(
    corpus: ParsedCorpus,
    vocab: Optional[Vocab] = None,
    *,
    spans_key: str = DEFAULT_SPANS_KEY,
    labels: Iterable[str] = (),
    corpus_name: Optional[str] = None,
    limit: Optional[int] = None,
) -> Iterator[Doc]:
    """Yield the Docs of a parsed corpus (annotated labels = found + ``labels``)."""
    vocab = vocab if vocab is not None else Vocab()
    all_labels = sorted(corpus.labels | set(labels))
    records = corpus.docs if limit is None else corpus.docs[:limit]
    for record in records:
        yield make_doc(vocab, record, all_labels, spans_key, corpus_name)


def write_corpus(
    corpus: ParsedCorpus,
    output: PathLike,
    fmt: str,
    *,
    spans_key: str = DEFAULT_SPANS_KEY,
    labels: Iterable[str] = (),
    corpus_name: Optional[str] = None,
    limit: Optional[int] = None,
) -> ConversionStats:
    """Write ``corpus`` to ``output`` as a DocBin, re-read it and check the counts."""
    if limit is not None and limit < 1:
        raise ConversionError(output, None, f"--limit must be at least 1, got {limit}")
    if not corpus.docs:
        raise ConversionError(
            ",".join(corpus.paths), None, "contains no sentences",
            f"Check that the file is not empty and that it is in '{fmt}' format",
        )
    all_labels = sorted(corpus.labels | set(labels))
    records = corpus.docs if limit is None else corpus.docs[:limit]
    truncated_from = len(corpus.docs) if len(records) < len(corpus.docs) else None
    read = count_parsed(records)
    vocab = Vocab()
    doc_bin = DocBin(store_user_data=True)
    for doc in iter_docs(
        corpus, vocab, spans_key=spans_key, labels=labels,
        corpus_name=corpus_name, limit=limit,
    ):
        doc_bin.add(doc)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    doc_bin.to_disk(output)
    with cached_msgpack_decoders():
        written_docs = list(DocBin().from_disk(output).get_docs(Vocab()))
    written = count_docs(written_docs, spans_key)
    try:
        _verify(output, read, written, written_docs, all_labels, spans_key, corpus_name)
    except ConversionError:
        output.unlink()  # leave no file that does not match its input
        raise
    return ConversionStats(
        fmt=fmt,
        inputs=list(corpus.paths),
        output=str(output),
        read=read,
        written=written,
        labels=all_labels,
        spans_key=spans_key,
        repairs=corpus.repairs,
        realigned=corpus.realigned,
        duplicates=corpus.duplicates,
        crossing=corpus.crossing,
        merged_sentences=corpus.merged_sentences,
        skipped_relations=corpus.skipped_relations,
        limit=limit,
        truncated_from=truncated_from,
    )


def _verify(
    output: Path,
    read: CorpusCounts,
    written: CorpusCounts,
    docs: Sequence[Doc],
    labels: List[str],
    spans_key: str,
    corpus_name: Optional[str],
) -> None:
    """Raise if the re-read file differs from what was read."""
    hint = "This is a bug in spacy_sru_ner.convert; please report it with the input file"
    if read != written:
        raise ConversionError(
            output, None,
            f"the written file does not match the input (read {read}, written {written})",
            hint,
        )
    for i, doc in enumerate(docs):
        spans = [(s.start, s.end, s.label_) for s in doc.spans.get(spans_key, [])]
        ents = [(s.start, s.end, s.label_) for s in doc.ents]
        expected_ents = [] if has_overlap(spans) else spans
        problem = None
        if ents != expected_ents:
            problem = f"doc {i}: doc.ents {ents} differ from the spans {expected_ents}"
        elif get_annotated_labels(doc) != labels:
            problem = f"doc {i}: annotated labels {get_annotated_labels(doc)} != {labels}"
        elif corpus_name and get_corpus_name(doc) != corpus_name:
            problem = f"doc {i}: corpus name {get_corpus_name(doc)!r} != {corpus_name!r}"
        if problem:
            raise ConversionError(output, None, f"the written file is wrong: {problem}", hint)


# ---------------------------------------------------------------------------
# Reporting


def format_counts_rows(stats: ConversionStats) -> List[Tuple[str, str, str]]:
    """Rows (what, read, written) of the counts table."""
    written = stats.written
    rows: List[Tuple[str, str, str]] = []

    def add(name: str, read_value: object, written_value: object) -> None:
        rows.append((name, str(read_value), "-" if written is None else str(written_value)))

    w = written if written is not None else CorpusCounts()
    add("documents", stats.read.documents, w.documents)
    add("sentences", stats.read.sentences, w.sentences)
    add("spaCy Docs", stats.read.docs, w.docs)
    add("tokens", stats.read.tokens, w.tokens)
    add("mentions", stats.read.mentions, w.mentions)
    for label in sorted(set(stats.read.entities) | set(w.entities)):
        add(f"  {label}", stats.read.entities[label], w.entities[label])
    add("nested-inner mentions", stats.read.nested_inner, w.nested_inner)
    add("docs with overlapping spans (no doc.ents)", stats.read.overlapping_docs, w.overlapping_docs)
    return rows


def print_stats(stats: ConversionStats, printer: Optional[Printer] = None) -> None:
    """Print the read/written counts table and the notes of a conversion."""
    msg = printer if printer is not None else Printer()
    inputs = ", ".join(stats.inputs)
    msg.divider(f"{stats.fmt}: {inputs}")
    msg.table(
        format_counts_rows(stats),
        header=("", "read", "written"),
        aligns=("l", "r", "r"),
        divider=True,
        max_col=60,
    )
    if stats.truncated_from is not None:
        msg.warn(
            f"--limit {stats.limit}: converted the first {stats.read.docs} of "
            f"{stats.truncated_from} Docs (output truncated)"
        )
    if stats.repairs:
        msg.info(f"{stats.repairs} I- tags did not continue a mention of their type and started one")
    if stats.realigned:
        msg.info(f"{stats.realigned} mentions realigned to token boundaries")
    if stats.crossing:
        msg.info(
            f"{stats.crossing} mentions crossed a sentence boundary: "
            f"{stats.merged_sentences} sentence boundaries merged to keep them"
        )
    if stats.duplicates:
        msg.info(f"{stats.duplicates} duplicate mentions (same start, end and label) merged")
    if stats.skipped_relations:
        msg.info(f"{stats.skipped_relations} relation lines ignored")
    msg.info(f"annotated labels: {', '.join(stats.labels) if stats.labels else '(none)'}")
    if stats.output is not None:
        msg.good(f"Wrote {stats.written.docs if stats.written else 0} Docs to {stats.output}")
