"""Pick the decision threshold of a trained ``sru_ner`` on dev data:
``python -m spacy_sru_ner tune-threshold MODEL DEV.spacy [...] --output DIR``.

The threshold only decides which TRANSITION/REDUCE actions of a step are
taken once the greedy decoder has run (the steps themselves follow the argmax),
so the decoder runs once and every candidate threshold is scored on the same
step probabilities. The best one (micro F over all dev mentions, each corpus
scored on the labels it annotates) is stored in the component's cfg and
config, and the pipeline is saved.
"""
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from spacy.language import Language
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example

from .contract import parse_corpus_label_map
from .evaluate import load_eval_examples, merge_label_maps, model_label_settings, pipe_strips_prefixes
from .scorer import score_spans

PathLike = Union[str, Path]
DEFAULT_GRID = tuple(round(0.05 * i, 2) for i in range(2, 19))  # 0.10 .. 0.90


def find_component(nlp: Language, name: Optional[str] = None):
    """The named component, or the pipeline's only ``sru_ner`` component."""
    from .pipe import SlotNER

    if name is not None:
        pipe = nlp.get_pipe(name)
        if not isinstance(pipe, SlotNER):
            raise ValueError(f"Component '{name}' is not an sru_ner component ({type(pipe).__name__}).")
        return name, pipe
    found = [(n, p) for n, p in nlp.pipeline if isinstance(p, SlotNER)]
    if len(found) != 1:
        raise ValueError(
            f"Expected one sru_ner component in the pipeline {nlp.pipe_names}, found {len(found)}: "
            "name it with --component."
        )
    return found[0]


def run_upstream(nlp: Language, name: str, docs: List[Doc], batch_size: int = 64) -> List[Doc]:
    """``docs`` through the components before ``name`` (e.g. its tok2vec or transformer)."""
    for _, upstream in nlp.pipeline[: nlp.pipe_names.index(name)]:
        docs = list(upstream.pipe(docs, batch_size=batch_size))
    return docs


def sweep_thresholds(
    examples: List[Example],
    docs: List[Doc],
    spans_key: str,
    thresholds: Sequence[float],
    annotate: Callable[[float], None],
) -> Dict[float, Dict[str, Any]]:
    """For each threshold, ``annotate(threshold)`` writes the predicted spans into
    ``docs`` (one per example, from predictions computed once), and the examples
    are scored with the exact-match span scorer: {threshold: score_spans result}."""
    results: Dict[float, Dict[str, Any]] = {}
    for threshold in sorted(set(thresholds)):
        annotate(threshold)
        for eg, doc in zip(examples, docs):
            eg.predicted = doc
        results[threshold] = score_spans(examples, spans_key=spans_key)
    return results


def best_threshold(f_scores: Dict[float, float], near: float) -> float:
    """The threshold with the highest F; ties go to the one nearest ``near``."""
    return max(f_scores, key=lambda t: (round(f_scores[t], 10), -abs(t - near)))


def tune_threshold(
    nlp: Language,
    paths: Sequence[PathLike],
    *,
    component: Optional[str] = None,
    grid: Sequence[float] = DEFAULT_GRID,
    label_map: Optional[str] = None,
    batch_size: int = 64,
    per_label: bool = False,
) -> Dict[str, Any]:
    """Score every threshold of ``grid`` on the dev files and set the best.

    With ``per_label``, each label also gets the threshold of the grid that
    maximises its own dev F (labels are decoded independently, so one pass over
    the grid scores every label); a label that reaches F = 0 at every threshold
    (e.g. no dev mentions) keeps the global one. Without it, one threshold
    serves every label and ``label_thresholds`` are cleared.

    Returns ``{"component", "threshold", "previous", "scores": {threshold: {p, r, f}}}``
    (fractions), plus ``"label_thresholds"``, ``"label_scores"`` ({label:
    {threshold: {p, r, f}}}) and ``"tuned"`` (the {p, r, f} with the chosen
    per-label thresholds) with ``per_label``. Ties go to the threshold nearest
    the previous one.
    """
    if not paths:
        raise ValueError("No dev files given.")
    if not grid or any(not 0.0 < t < 1.0 for t in grid):
        raise ValueError(f"Thresholds must lie strictly between 0 and 1, got {list(grid)}.")
    name, pipe = find_component(nlp, component)
    if pipe_strips_prefixes(pipe):
        raise ValueError(
            f"'{name}' writes its labels without their corpus prefixes (strip_prefixes = true), but thresholds "
            "belong to the prefixed labels: tune with strip_prefixes off, then switch it on."
        )
    global_map, per_corpus = parse_corpus_label_map(label_map)
    config_maps, prefix_labels, _ = model_label_settings(nlp)
    merge_label_maps(config_maps, global_map, per_corpus)
    examples = []
    for path in paths:
        for group in load_eval_examples(
            nlp, path, spans_key=pipe.key, label_map=global_map, corpus_label_maps=per_corpus,
            prefix_labels=prefix_labels,
        ).values():
            examples.extend(group)
    docs = run_upstream(nlp, name, [eg.predicted for eg in examples], batch_size)
    probs = []
    for start in range(0, len(docs), batch_size):
        probs.extend(pipe.predict_probs(docs[start : start + batch_size]))
    prefix = f"spans_{pipe.key}"

    def annotate(global_threshold: float, label_thresholds: Dict[str, float]) -> None:
        decoded = pipe.spans_from_probs(probs, pipe.action_thresholds(global_threshold, label_thresholds))
        for doc, spans in zip(docs, decoded):
            doc.spans[pipe.key] = SpanGroup(doc, name=pipe.key, spans=[Span(doc, s, e, label=l) for s, e, l, _ in spans])

    previous = float(pipe.cfg["threshold"])
    previous_labels = dict(pipe.cfg.get("label_thresholds") or {})
    results = sweep_thresholds(
        examples, docs, pipe.key, [float(t) for t in grid] + [previous], lambda t: annotate(t, {})
    )
    scores = {t: {k: float(r[f"{prefix}_{k}"]) for k in ("p", "r", "f")} for t, r in results.items()}
    per_type = {t: r[f"{prefix}_per_type"] for t, r in results.items()}
    best = best_threshold({t: s["f"] for t, s in scores.items()}, previous)
    out: Dict[str, Any] = {"component": name, "threshold": best, "previous": previous, "scores": scores}
    chosen: Dict[str, float] = {}
    if per_label:
        zero = {"p": 0.0, "r": 0.0, "f": 0.0}
        label_scores = {
            label: {t: {k: float(per_type[t].get(label, zero)[k]) for k in ("p", "r", "f")} for t in scores}
            for label in pipe.labels
        }
        for label, by_t in label_scores.items():
            if max(s["f"] for s in by_t.values()) > 0:
                near = previous_labels.get(label, best)
                chosen[label] = best_threshold({t: s["f"] for t, s in by_t.items()}, near)
        tuned = sweep_thresholds(examples, docs, pipe.key, [best], lambda t: annotate(t, chosen))[best]
        out.update(
            label_thresholds=chosen,
            label_scores=label_scores,
            tuned={k: float(tuned[f"{prefix}_{k}"]) for k in ("p", "r", "f")},
        )
    pipe.cfg["threshold"] = best
    pipe.cfg["label_thresholds"] = chosen
    config = nlp.get_pipe_config(name)
    config["threshold"] = best
    config["label_thresholds"] = dict(chosen)
    return out


def tune_threshold_cli_main(
    model: PathLike,
    data: Sequence[PathLike],
    *,
    output: Optional[PathLike] = None,
    component: Optional[str] = None,
    grid: Optional[str] = None,
    label_map: Optional[str] = None,
    gpu_id: int = -1,
    batch_size: int = 64,
    per_label: bool = False,
) -> Dict[str, Any]:
    """Load ``model``, tune, print the table(s), save the pipeline to ``output``
    (default: the model folder itself) with ``threshold.json`` beside it."""
    import spacy
    import srsly

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    for path in data:
        if not Path(path).exists():
            raise ValueError(f"{path}: file not found.")
    thresholds = DEFAULT_GRID
    if grid:
        try:
            thresholds = tuple(float(t) for t in grid.split(",") if t.strip())
        except ValueError:
            raise ValueError(f"--grid: expected comma-separated numbers, got {grid!r}") from None
    if output is None:
        if not Path(model).is_dir():
            raise ValueError(f"{model} is not a pipeline folder: give --output to save the tuned pipeline.")
        output = model
    nlp = spacy.load(model)
    result = tune_threshold(
        nlp, data, component=component, grid=thresholds, label_map=label_map, batch_size=batch_size,
        per_label=per_label,
    )
    print(f"{'threshold':>9} {'P':>7} {'R':>7} {'F':>7}")
    for t, s in result["scores"].items():
        mark = "  <- best" if t == result["threshold"] else ("  (previous)" if t == result["previous"] else "")
        print(f"{t:>9.2f} {100 * s['p']:>7.2f} {100 * s['r']:>7.2f} {100 * s['f']:>7.2f}{mark}")
    previous_f = result["scores"][result["previous"]]["f"]
    gain = result["scores"][result["threshold"]]["f"] - previous_f
    summary = f"threshold {result['previous']:.2f} -> {result['threshold']:.2f} (dev F {100 * gain:+.2f})"
    if per_label:
        print(f"\n{'label':<20} {'threshold':>9} {'P':>7} {'R':>7} {'F':>7}   (F at {result['threshold']:.2f})")
        for label, by_t in result["label_scores"].items():
            t = result["label_thresholds"].get(label, result["threshold"])
            s = by_t[t]
            at_global = by_t[result["threshold"]]["f"]
            print(f"{label:<20} {t:>9.2f} {100 * s['p']:>7.2f} {100 * s['r']:>7.2f} {100 * s['f']:>7.2f}   ({100 * at_global:.2f})")
        summary += f"; per label: dev F {100 * (result['tuned']['f'] - previous_f):+.2f}"
    output = Path(output)
    nlp.to_disk(output)
    json_result = {**result, "scores": {f"{t:.2f}": s for t, s in result["scores"].items()}}
    if per_label:
        json_result["label_scores"] = {
            label: {f"{t:.2f}": s for t, s in by_t.items()} for label, by_t in result["label_scores"].items()
        }
    srsly.write_json(output / "threshold.json", {"model": str(model), "data": [str(p) for p in data], **json_result})
    print(f"✔ {summary}; saved {output}")
    return result
