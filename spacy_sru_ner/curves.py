"""Learning curves: a ``spacy train`` logger that records every evaluation with
the training time spent so far, and a plot of dev F against updates and seconds.

    python -m spacy train CONFIG --output DIR \\
        --training.logger.@loggers spacy_sru_ner.CurveLogger.v1 --training.logger.path DIR/curve.jsonl
    python -m spacy_sru_ner plot-curves curves.png sru_ner=DIR/curve.jsonl spancat=OTHER/curve.jsonl

Training seconds exclude the time spent evaluating (``nlp.evaluate`` is timed
and subtracted), so runs that evaluate at different cost compare fairly.
"""
import json
import sys
import time
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from spacy.util import registry

PathLike = Union[str, Path]
LOGGER_NAME = "spacy_sru_ner.CurveLogger.v1"


@registry.loggers(LOGGER_NAME)
def curve_logger(path: Optional[str] = None, progress_bar: bool = False) -> Callable:
    """spaCy's console logger, plus one JSON line per evaluation in ``path``:
    ``{"step", "epoch", "words", "train_seconds", "score", "scores", "losses"}``
    (``scores``: every dev score, per-type ones included)."""
    from spacy.training.loggers import console_logger

    console = console_logger(progress_bar=progress_bar)

    def setup(nlp, stdout: IO = sys.stdout, stderr: IO = sys.stderr) -> Tuple[Callable, Callable]:
        log_console, finalize_console = console(nlp, stdout, stderr)
        evaluate = nlp.evaluate
        eval_seconds = [0.0]

        def timed_evaluate(*args: Any, **kwargs: Any) -> Dict[str, Any]:
            start_eval = time.perf_counter()
            try:
                return evaluate(*args, **kwargs)
            finally:
                eval_seconds[0] += time.perf_counter() - start_eval

        nlp.evaluate = timed_evaluate
        file_ = None
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            file_ = Path(path).open("w", encoding="utf8")
        start = time.perf_counter()

        def log_step(info: Optional[Dict[str, Any]]) -> None:
            log_console(info)
            if file_ is None or info is None or info.get("score") is None:
                return
            record = {
                "step": info["step"],
                "epoch": info["epoch"],
                "words": info["words"],
                "train_seconds": round(time.perf_counter() - start - eval_seconds[0], 3),
                "score": info["score"],
                "scores": info["other_scores"],
                "losses": info["losses"],
            }
            file_.write(json.dumps(record, default=_plain) + "\n")
            file_.flush()

        def finalize() -> None:
            finalize_console()
            if file_ is not None:
                file_.close()
            if vars(nlp).get("evaluate") is timed_evaluate:
                del nlp.evaluate

        return log_step, finalize

    return setup


def _plain(value: Any) -> Any:
    """numpy scalars (a component's losses or scores) as Python numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def read_curve(path: PathLike) -> List[Dict[str, Any]]:
    """The records of a curve file; a clear error names a bad line."""
    records = []
    with Path(path).open(encoding="utf8") as file_:
        for i, line in enumerate(file_, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{i}: not a JSON line ({err.msg}).") from None
    if not records:
        raise ValueError(f"{path}: no evaluations recorded (was the run's eval_frequency above its steps?).")
    return records


def f_score(record: Dict[str, Any]) -> float:
    """The record's F: the span F (``spans_<key>_f``) or entity F (``ents_f``)
    of the dev scores, whatever the component; else the training score."""
    scores = record.get("scores") or {}
    for key, value in scores.items():
        if key.endswith("_f") and key.startswith(("spans_", "ents_")) and isinstance(value, (int, float)):
            return float(value)
    return float(record["score"])


def corpus_f_scores(record: Dict[str, Any]) -> Dict[str, float]:
    """The record's dev F per corpus (``spans_<key>_per_corpus``, written by
    the span scorer for multi-corpus dev sets); empty if not recorded."""
    scores = record.get("scores") or {}
    for key, value in scores.items():
        if key.startswith("spans_") and key.endswith("_per_corpus") and isinstance(value, dict):
            return {name: float(prf["f"]) for name, prf in value.items()}
    return {}


def plot_curves(
    runs: Sequence[Tuple[str, PathLike]], output: PathLike, title: str = "", per_corpus: bool = False
) -> Path:
    """Plot dev F (in %, see :func:`f_score`) of each ``(name, curve file)``
    against updates and against training seconds, side by side, as a PNG.
    ``per_corpus``: also each corpus's dev F (dashed), at the evaluations that
    recorded it (:func:`corpus_f_scores`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_step, by_time) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for name, path in runs:
        records = read_curve(path)
        scores = [100 * f_score(r) for r in records]
        by_step.plot([r["step"] for r in records], scores, marker=".", label=name)
        by_time.plot([r["train_seconds"] for r in records], scores, marker=".", label=name)
        if per_corpus:
            corpora = sorted({c for r in records for c in corpus_f_scores(r)})
            for corpus in corpora:
                points = [(r["step"], r["train_seconds"], 100 * corpus_f_scores(r)[corpus])
                          for r in records if corpus in corpus_f_scores(r)]
                steps, seconds, values = zip(*points)
                by_step.plot(steps, values, linestyle="--", linewidth=1, label=f"{name}: {corpus}")
                by_time.plot(seconds, values, linestyle="--", linewidth=1, label=f"{name}: {corpus}")
    by_step.set_xlabel("updates")
    by_time.set_xlabel("training seconds (evaluation excluded)")
    by_step.set_ylabel("dev F (%)")
    for ax in (by_step, by_time):
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output


def summarize_curves(runs: Sequence[Tuple[str, PathLike]]) -> List[Dict[str, Any]]:
    """Per run: the last and the best evaluation (step, seconds, dev F)."""
    rows = []
    for name, path in runs:
        records = read_curve(path)
        best = max(records, key=f_score)
        last = records[-1]
        rows.append({
            "name": name, "file": str(path),
            "last": {"step": last["step"], "train_seconds": last["train_seconds"], "f": f_score(last)},
            "best": {"step": best["step"], "train_seconds": best["train_seconds"], "f": f_score(best)},
        })
    return rows
