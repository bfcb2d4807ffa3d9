"""Per-corpus evaluation of a trained pipeline: ``python -m spacy_sru_ner evaluate``.

Each ``.spacy`` file is one corpus (named by the corpus name its docs record,
else by the file stem; a generic split name such as ``test`` is replaced by
the parent folder's name, so ``corpus/bc5cdr/test.spacy`` is ``bc5cdr``).
Every corpus is scored only on the labels it annotates (see
:func:`spacy_sru_ner.scorer.score_spans`): micro P/R/F and P/R/F per label, plus
the macro average over corpora and the micro average over all mentions.
"""
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy
from spacy.language import Language
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example

from .actions import merge_heads
from .confusion import confusion_by_label, format_confusion
from .contract import DEFAULT_SPANS_KEY, LabelMap, get_annotated_labels, get_corpus_name, gold_spans
from .contract import label_prefix, parse_corpus_label_map, relabel_doc, strip_prefix
from .corpora import READER_NAME, load_corpus_docs, make_example
from .scorer import score_spans

PathLike = Union[str, Path]
# split names that say nothing about the corpus: use the folder name instead
GENERIC_STEMS = {"train", "dev", "devel", "valid", "validation", "test", "eval", "evaluation"}


def default_corpus_name(path: PathLike) -> str:
    """The file stem, or the parent folder's name for a generic split name."""
    path = Path(path)
    stem = path.stem if path.suffix == ".spacy" else path.name
    if stem.lower() in GENERIC_STEMS and path.parent.name:
        return path.parent.name
    return stem


def strip_span_prefixes(doc: Doc, spans_key: str) -> None:
    """Write ``doc.spans[spans_key]`` (if present) without corpus prefixes, as
    sru_ner's ``strip_prefixes`` does (:func:`spacy_sru_ner.actions.merge_heads`:
    of overlapping same-label spans of different corpora the higher-scored is
    kept; scores from the group's ``scores`` attribute, else all equal)."""
    if spans_key not in doc.spans:
        return
    group = doc.spans[spans_key]
    scores = group.attrs.get("scores")
    has_scores = scores is not None and len(scores) == len(group)
    spans = [(s.start, s.end, s.label_, float(scores[i]) if has_scores else 0.0) for i, s in enumerate(group)]
    spans = merge_heads(spans, strip_prefix, label_prefix)
    attrs = dict(group.attrs)
    if has_scores:
        attrs["scores"] = numpy.asarray([score for *_, score in spans], dtype="float32")
    doc.spans[spans_key] = SpanGroup(
        doc, name=spans_key, attrs=attrs, spans=[Span(doc, s, e, label=label) for s, e, label, _ in spans]
    )


def model_label_settings(nlp: Language) -> Tuple[Dict[str, Dict[str, Optional[str]]], bool, Optional[str]]:
    """``(label_maps, prefix_labels, section)`` of the MultiCorpus reader in the
    model's training config (``[corpora.dev]``, else ``[corpora.train]``), or
    ``({}, False, None)`` if the model was not trained with one. prefix_labels
    is False where the model writes its labels without the prefixes
    (``strip_prefixes``): its output is scored on the plain gold labels."""
    try:
        config = nlp.config.interpolate()
    except Exception:  # a config that cannot be interpolated on its own
        config = nlp.config
    corpora = config.get("corpora") or {}
    for key in ("dev", "train"):
        section = corpora.get(key)
        if isinstance(section, dict) and section.get("@readers") == READER_NAME:
            maps = {str(c): dict(m or {}) for c, m in (section.get("label_maps") or {}).items()}
            prefix = section.get("prefix_labels", False) is True and not _strips_prefixes(nlp)
            return maps, prefix, f"corpora.{key}"
    return {}, False, None


def merge_label_maps(
    config_maps: Mapping[str, LabelMap], global_map: Mapping[str, str], per_corpus: Dict[str, Dict[str, str]]
) -> None:
    """Fold a model's MultiCorpus label maps into ``per_corpus`` in place, with
    the lowest precedence: ``global_map`` and then ``per_corpus`` entries win."""
    for corpus in set(config_maps) | set(per_corpus):
        per_corpus[corpus] = {**config_maps.get(corpus, {}), **global_map, **per_corpus.get(corpus, {})}


def pipe_strips_prefixes(pipe: Any) -> bool:
    """Whether ``pipe`` writes corpus-prefixed labels without their prefix (sru_ner's ``strip_prefixes``)."""
    return bool(getattr(pipe, "cfg", {}).get("strip_prefixes", False))


def _strips_prefixes(nlp: Language) -> bool:
    """Whether a component of ``nlp`` writes corpus-prefixed labels without their prefix."""
    return any(pipe_strips_prefixes(pipe) for _, pipe in nlp.pipeline)


def _model_labels(nlp: Language, spans_key: str) -> Optional[List[str]]:
    labels: List[str] = []
    found = False
    for _, pipe in nlp.pipeline:
        if getattr(pipe, "key", None) == spans_key and hasattr(pipe, "labels"):
            strip = pipe_strips_prefixes(pipe)
            labels.extend(strip_prefix(label) if strip else label for label in pipe.labels)
            found = True
    return labels if found else None


def load_eval_examples(
    nlp: Language,
    path: PathLike,
    *,
    spans_key: str = DEFAULT_SPANS_KEY,
    label_map: Optional[LabelMap] = None,
    corpus_label_maps: Optional[Mapping[str, LabelMap]] = None,
    prefix_labels: bool = False,
) -> Dict[str, List[Example]]:
    """Examples of one ``.spacy`` file grouped by corpus name (unpredicted).

    ``label_map`` renames gold labels of every corpus, ``corpus_label_maps``
    those of one corpus (its entries override ``label_map``'s for the same
    original label); ``prefix_labels`` prefixes gold
    labels with the corpus name (for models trained with prefixed labels).
    Raises ValueError naming the file if it is missing or empty.
    """
    name = default_corpus_name(path)
    docs = load_corpus_docs(path, nlp.vocab, name, spans_key=spans_key, keep_recorded_name=True)
    groups: Dict[str, List[Example]] = defaultdict(list)
    for doc in docs:
        corpus = get_corpus_name(doc) or name
        combined: Dict[str, Optional[str]] = {**(label_map or {}), **((corpus_label_maps or {}).get(corpus) or {})}
        if combined or prefix_labels:
            prefix = corpus if prefix_labels else None
            relabel_doc(doc, combined, prefix, spans_key, annotated=get_annotated_labels(doc) or [])
        groups[corpus].append(make_example(nlp, doc))
    return dict(groups)


def _prf(score: Dict[str, Any], spans_key: str) -> Dict[str, float]:
    prefix = f"spans_{spans_key}"
    return {k: float(score[f"{prefix}_{k}"]) for k in ("p", "r", "f")}


def score_corpus(examples: Sequence[Example], spans_key: str = DEFAULT_SPANS_KEY) -> Dict[str, Any]:
    """Micro P/R/F, P/R/F per label (with gold counts), the errors per label
    (:func:`spacy_sru_ner.confusion.confusion_by_label`) and sizes of one corpus."""
    score = score_spans(examples, spans_key=spans_key)
    support: Counter = Counter()
    annotated = set()
    for eg in examples:
        labels = get_annotated_labels(eg.reference)
        if labels is not None:
            annotated.update(labels)
        keep = None if labels is None else set(labels)
        support.update(s.label_ for s in gold_spans(eg.reference, spans_key) if keep is None or s.label_ in keep)
    per_type = {}
    for label, prf in score[f"spans_{spans_key}_per_type"].items():
        per_type[label] = {"p": float(prf["p"]), "r": float(prf["r"]), "f": float(prf["f"]), "gold": support[label]}
    for label in sorted(annotated - set(per_type)):
        per_type[label] = {"p": 0.0, "r": 0.0, "f": 0.0, "gold": 0}
    return {
        **_prf(score, spans_key),
        "docs": len(examples),
        "gold": sum(support.values()),
        "labels": sorted(annotated),
        "per_type": dict(sorted(per_type.items())),
        "errors": confusion_by_label(examples, spans_key),
    }


def evaluate_corpora(
    nlp: Language,
    paths: Sequence[PathLike],
    *,
    spans_key: str = DEFAULT_SPANS_KEY,
    label_map: Optional[LabelMap] = None,
    corpus_label_maps: Optional[Mapping[str, LabelMap]] = None,
    prefix_labels: bool = False,
    strip_prefixes: bool = False,
    batch_size: int = 64,
) -> Dict[str, Any]:
    """Run ``nlp`` over every file and score each corpus on its own labels.

    strip_prefixes: remove corpus prefixes (``BC5CDR$``) from predicted labels
        before scoring, as sru_ner's ``strip_prefixes`` writes them
        (:func:`strip_span_prefixes`; the reference's "joined" evaluation of a
        model trained with ``prefix_labels`` only renames).

    Returns ``{"corpora": {name: {"file", "p", "r", "f", "docs", "gold",
    "labels", "per_type": {label: {"p", "r", "f", "gold"}}, "errors": {"per_label",
    "confusions"}}}, "macro": {p, r, f}
    (mean over corpora), "micro": {p, r, f} (all mentions), "warnings": [...]}``.
    Scores are fractions in [0, 1].
    """
    if not paths:
        raise ValueError("No data files given.")
    groups: Dict[str, Tuple[str, List[Example]]] = {}
    for path in paths:
        for name, examples in load_eval_examples(
            nlp,
            path,
            spans_key=spans_key,
            label_map=label_map,
            corpus_label_maps=corpus_label_maps,
            prefix_labels=prefix_labels,
        ).items():
            key = name
            if key in groups:
                key = f"{name}:{Path(path).stem}"
            n = 2
            while key in groups:
                key, n = f"{name}:{Path(path).stem}#{n}", n + 1
            groups[key] = (str(path), examples)
    all_examples: List[Example] = []
    for _, examples in groups.values():
        predicted = nlp.pipe([eg.predicted for eg in examples], batch_size=batch_size)
        for eg, doc in zip(examples, predicted):
            if strip_prefixes:
                strip_span_prefixes(doc, spans_key)
            eg.predicted = doc
        all_examples.extend(examples)
    model_labels = _model_labels(nlp, spans_key)
    warnings: List[str] = []
    corpora: Dict[str, Dict[str, Any]] = {}
    for name, (path, examples) in groups.items():
        result = score_corpus(examples, spans_key)
        corpora[name] = {"file": path, **result}
        if model_labels is not None:
            predictable = {strip_prefix(l) for l in model_labels} if strip_prefixes else set(model_labels)
            if result["labels"] and not predictable & set(result["labels"]):
                warnings.append(
                    f"corpus '{name}' ({path}) annotates {result['labels']}, none of which the model "
                    f"predicts ({sorted(model_labels)}): map the labels with --label-map "
                    f"(or use --prefix-labels / --strip-prefixes)."
                )
    macro = {k: sum(c[k] for c in corpora.values()) / len(corpora) for k in ("p", "r", "f")}
    micro = _prf(score_spans(all_examples, spans_key=spans_key), spans_key)
    return {"spans_key": spans_key, "corpora": corpora, "macro": macro, "micro": micro, "warnings": warnings}


def format_results(results: Dict[str, Any]) -> str:
    """Plain-text tables (percentages) of :func:`evaluate_corpora` results."""

    def row(name: str, s: Dict[str, Any], gold: Any = "") -> str:
        return f"{name:<32} {100 * s['p']:>7.2f} {100 * s['r']:>7.2f} {100 * s['f']:>7.2f} {gold!s:>7}"

    header = f"{'':<32} {'P':>7} {'R':>7} {'F':>7} {'gold':>7}"
    lines: List[str] = []
    for name, corpus in results["corpora"].items():
        lines.append(f"== {name} ({corpus['file']}, {corpus['docs']} docs)")
        lines.append(header)
        for label, s in corpus["per_type"].items():
            lines.append(row(label, s, s["gold"]))
        lines.append(row("micro", corpus, corpus["gold"]))
        if "errors" in corpus:
            lines.extend(format_confusion(corpus["errors"]))
        lines.append("")
    lines.append("== all corpora")
    lines.append(header)
    for name, corpus in results["corpora"].items():
        lines.append(row(name, corpus, corpus["gold"]))
    lines.append(row("macro (mean over corpora)", results["macro"]))
    lines.append(row("micro (all mentions)", results["micro"]))
    return "\n".join(lines)


def set_max_positive(nlp: Language, max_positive: int) -> None:
    """Decode every ``sru_ner`` component of ``nlp`` with at most
    ``max_positive`` labels per span (0: no limit); ``nlp.to_disk`` keeps it."""
    from .pipe import SlotNER

    names = [name for name, pipe in nlp.pipeline if isinstance(pipe, SlotNER)]
    if not names:
        raise ValueError(f"max_positive: the pipeline has no sru_ner component ({nlp.pipe_names}).")
    for name in names:
        nlp.get_pipe(name).cfg["max_positive"] = max_positive or None
        nlp.get_pipe_config(name)["max_positive"] = max_positive or None


def evaluate_cli_main(
    model: PathLike,
    data: Iterable[PathLike],
    *,
    output: Optional[PathLike] = None,
    spans_key: str = DEFAULT_SPANS_KEY,
    label_map: Optional[str] = None,
    prefix_labels: bool = False,
    strip_prefixes: bool = False,
    model_maps: bool = True,
    max_positive: Optional[int] = None,
    gpu_id: int = -1,
    batch_size: int = 64,
) -> Dict[str, Any]:
    """Load ``model``, evaluate on ``data`` files, print tables, write JSON.

    max_positive: decode every ``sru_ner`` component with this ``max_positive``
        (0: no limit) instead of its own setting; None keeps the model's.

    model_maps: also apply the label maps and ``prefix_labels`` of the
        MultiCorpus reader in the model's training config (lowest precedence:
        ``label_map`` entries override them).
    """
    import spacy
    import srsly

    if prefix_labels and strip_prefixes:
        raise ValueError("--prefix-labels and --strip-prefixes exclude each other: pick one.")
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    global_map, per_corpus = parse_corpus_label_map(label_map)
    paths = [Path(p) for p in data]
    for path in paths:  # fail before loading the model
        if not path.exists():
            raise ValueError(f"{path}: file not found.")
    nlp = spacy.load(model)
    if max_positive is not None:
        set_max_positive(nlp, max_positive)
    if model_maps:
        config_maps, config_prefix, section = model_label_settings(nlp)
        if section is not None:
            print(f"ℹ Using the label maps of the model's [{section}] (--no-model-maps to ignore them)")
            merge_label_maps(config_maps, global_map, per_corpus)
            prefix_labels = prefix_labels or (config_prefix and not strip_prefixes)
    results = evaluate_corpora(
        nlp,
        paths,
        spans_key=spans_key,
        label_map=global_map,
        corpus_label_maps=per_corpus,
        prefix_labels=prefix_labels,
        strip_prefixes=strip_prefixes,
        batch_size=batch_size,
    )
    results = {"model": str(model), **results}
    if max_positive is not None:
        results["max_positive"] = max_positive or None
    print(format_results(results))
    for warning in results["warnings"]:
        print(f"⚠ {warning}")
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(output, results)
        print(f"✔ Saved results to {output}")
    return results
