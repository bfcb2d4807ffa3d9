"""What ``sru_ner`` reads from and writes to a Doc.

Mentions: ``doc.spans[spans_key]`` (default :data:`DEFAULT_SPANS_KEY`), else
``doc.ents`` for a reference doc without that group (:func:`gold_spans`).

Annotated labels: the set of entity labels a doc's corpus annotates is stored
in ``doc.user_data[ANNOTATED_LABELS_KEY]`` as a sorted list of label strings, so
it survives ``DocBin(store_user_data=True)``. A doc without that record counts
as annotated for every label of the component. The corpus name is stored in
``doc.user_data[CORPUS_KEY]``.

Labels: a label may carry its corpus name as a prefix (``BC5CDR$Disease``,
:data:`PREFIX_SEP`), and label maps (old -> new; a new name of None or ""
drops the label) rename the labels of a corpus (:func:`map_label`,
:func:`relabel_doc`; written ``OLD=NEW,CORPUS:OLD=NEW`` on the command line).

This module imports spaCy only inside the functions that build spans, so that
the command line interface can use :data:`DEFAULT_SPANS_KEY` without loading
spaCy.
"""
from collections import defaultdict
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span

DEFAULT_SPANS_KEY = "sru_ner"
ANNOTATED_LABELS_KEY = "sru_ner.annotated_labels"
CORPUS_KEY = "sru_ner.corpus"
# separator between corpus name and label in prefixed labels ("BC5CDR$Disease")
PREFIX_SEP = "$"

LabelMap = Mapping[str, Optional[str]]


# ---------------------------------------------------------------------------
# Doc metadata


def set_annotated_labels(doc: "Doc", labels: Iterable[str]) -> None:
    """Record that ``doc``'s corpus annotates exactly ``labels``."""
    doc.user_data[ANNOTATED_LABELS_KEY] = sorted(set(labels))


def get_annotated_labels(doc: "Doc") -> Optional[List[str]]:
    """Return the labels ``doc``'s corpus annotates, or None (= all labels)."""
    value = doc.user_data.get(ANNOTATED_LABELS_KEY)
    return None if value is None else list(value)


def set_corpus_name(doc: "Doc", name: str) -> None:
    doc.user_data[CORPUS_KEY] = name


def get_corpus_name(doc: "Doc") -> Optional[str]:
    return doc.user_data.get(CORPUS_KEY)


def gold_spans(doc: "Doc", spans_key: str) -> Sequence["Span"]:
    """A reference doc's mentions: ``doc.spans[spans_key]``, else ``doc.ents``."""
    if spans_key in doc.spans:
        return doc.spans[spans_key]
    return doc.ents


# ---------------------------------------------------------------------------
# Labels


def prefix_label(corpus: str, label: str) -> str:
    """``prefix_label("BC5CDR", "Disease") == "BC5CDR$Disease"``."""
    return f"{corpus}{PREFIX_SEP}{label}"


def strip_prefix(label: str) -> str:
    """The label without its corpus prefix (unchanged if it has none)."""
    return label.split(PREFIX_SEP, 1)[1] if PREFIX_SEP in label else label


def label_prefix(label: str) -> str:
    """The corpus prefix of a label (``"BC5CDR$Disease"`` -> ``"BC5CDR"``), or ""."""
    return label.split(PREFIX_SEP, 1)[0] if PREFIX_SEP in label else ""


def map_label(
    label: str, label_map: Optional[LabelMap] = None, prefix: Optional[str] = None, *, drop_empty: bool = True
) -> Optional[str]:
    """Rename ``label`` with ``label_map`` (old -> new; a new name of None or
    "" drops the label), then prefix it with ``prefix`` if given. Returns None
    for a dropped label.

    drop_empty: False keeps an empty new name as it is instead of dropping the
        label (the corpus converters' rule; their command line rejects one).
    """
    if label_map and label in label_map:
        new = label_map[label]
        if not new and drop_empty:
            return None
        label = new  # type: ignore[assignment]
    return prefix_label(prefix, label) if prefix else label


def rename_spans(doc: "Doc", spans_key: str, rename: Callable[[str], Optional[str]]) -> None:
    """Replace the labels of ``doc.spans[spans_key]`` (if present) by
    ``rename(label)`` in place; spans renamed to None are dropped. The group's
    attributes are kept."""
    from spacy.tokens import Span, SpanGroup

    if spans_key not in doc.spans:
        return
    group = doc.spans[spans_key]
    spans = []
    for span in group:
        label = rename(span.label_)
        if label is not None:
            spans.append(Span(doc, span.start, span.end, label=label))
    doc.spans[spans_key] = SpanGroup(doc, name=spans_key, attrs=dict(group.attrs), spans=spans)


def relabel_doc(
    doc: "Doc",
    label_map: Optional[LabelMap] = None,
    prefix: Optional[str] = None,
    spans_key: str = DEFAULT_SPANS_KEY,
    annotated: Optional[Iterable[str]] = None,
) -> "Doc":
    """Rename (and drop, and prefix) the labels of ``doc.spans[spans_key]`` and
    ``doc.ents`` in place, as :func:`map_label` does; returns ``doc``.

    Dropped entities become outside ("O") tokens; tokens with missing entity
    annotation stay missing.

    annotated: the labels the doc's corpus annotates, in their original names.
        If given, they are renamed the same way (dropped ones left out) and
        recorded as the doc's annotated labels, together with the labels of
        its own mentions; if None, the recorded annotated labels are left
        alone.
    """
    from spacy.tokens import Span

    if label_map or prefix:
        rename_spans(doc, spans_key, lambda label: map_label(label, label_map, prefix))
        ents = list(doc.ents)
        if ents:
            kept, dropped = [], []
            for ent in ents:
                label = map_label(ent.label_, label_map, prefix)
                if label is None:
                    dropped.append(Span(doc, ent.start, ent.end))
                else:
                    kept.append(Span(doc, ent.start, ent.end, label=label))
            doc.set_ents(kept, outside=dropped, default="unmodified")
    if annotated is not None:
        labels = {map_label(label, label_map, prefix) for label in annotated}
        labels.discard(None)
        labels.update(span.label_ for span in gold_spans(doc, spans_key))
        set_annotated_labels(doc, labels)  # type: ignore[arg-type]
    return doc


# ---------------------------------------------------------------------------
# Label maps on the command line


class LabelMapError(ValueError):
    """A malformed ``--label-map`` value; the message reads ``"--label-map: {problem}"``."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"--label-map: {problem}")


def _label_map_items(text: Optional[str], expected: str) -> Iterator[Tuple[str, str, str]]:
    """``(item, OLD, NEW)`` for each non-empty item of comma-separated
    ``OLD=NEW`` text (OLD and NEW stripped); LabelMapError, saying what was
    ``expected``, for an item without "=" or without OLD."""
    for item in (text or "").split(","):
        if not item.strip():
            continue
        old, sep, new = item.partition("=")
        old, new = old.strip(), new.strip()
        if not sep or not old:
            raise LabelMapError(f"expected {expected}, got {item!r}")
        yield item, old, new


def parse_label_map(text: Optional[str]) -> Dict[str, str]:
    """Parse ``OLD=NEW,OLD2=NEW2`` into a dict; every item needs OLD and NEW
    (LabelMapError otherwise)."""
    label_map: Dict[str, str] = {}
    for item, old, new in _label_map_items(text, "OLD=NEW"):
        if not new:
            raise LabelMapError(f"expected OLD=NEW, got {item!r}")
        label_map[old] = new
    return label_map


def parse_corpus_label_map(text: Optional[str]) -> Tuple[Dict[str, str], Dict[str, Dict[str, str]]]:
    """Parse ``OLD=NEW,CORPUS:OLD=NEW`` into (global map, per-corpus maps).

    An empty NEW drops the label (``Disease=`` ignores Disease mentions)."""
    global_map: Dict[str, str] = {}
    per_corpus: Dict[str, Dict[str, str]] = defaultdict(dict)
    for item, old, new in _label_map_items(text, "OLD=NEW or CORPUS:OLD=NEW"):
        corpus, colon, label = old.partition(":")
        if colon:
            if not corpus.strip() or not label.strip():
                raise LabelMapError(f"expected CORPUS:OLD=NEW, got {item!r}")
            per_corpus[corpus.strip()][label.strip()] = new
        else:
            global_map[old] = new
    return global_map, dict(per_corpus)
