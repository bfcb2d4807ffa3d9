"""Command line interface: ``python -m spacy_sru_ner COMMAND``."""
from pathlib import Path
from typing import List, Optional

import typer

from .contract import DEFAULT_SPANS_KEY, LabelMapError, parse_label_map
from .formats import CorpusFormat, TextFormat

app = typer.Typer(
    name="spacy_sru_ner",
    help="spaCy SRU-NER: corpus conversion and other tools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """spaCy SRU-NER command line tools."""


def parse_labels(text: Optional[str]) -> List[str]:
    """Parse ``A,B`` into a list of labels."""
    return [label.strip() for label in (text or "").split(",") if label.strip()]


@app.command("convert")
def convert_cli(
    input: str = typer.Argument(
        ..., help="Input file; for genia-mlc a comma-separated list or a glob like 'dir/*_train.conll'"
    ),
    output: Path = typer.Argument(..., help="Output .spacy file", dir_okay=False),
    fmt: Optional[CorpusFormat] = typer.Option(
        None, "--format", "-f", help="Input format (default: guessed from the extension)"
    ),
    spans_key: str = typer.Option(DEFAULT_SPANS_KEY, "--spans-key", help="doc.spans key for all mentions"),
    corpus: Optional[str] = typer.Option(None, "--corpus", help="Corpus name stored on each Doc"),
    label_map: Optional[str] = typer.Option(None, "--label-map", help="Rename labels: OLD=NEW,OLD2=NEW2"),
    labels: Optional[str] = typer.Option(
        None, "--labels", help="Labels the corpus annotates besides those found (final names): A,B"
    ),
    limit: Optional[int] = typer.Option(
        None, "--limit", min=1, help="Write only the first N Docs (sentences; PubTator: documents)"
    ),
    split_sentences: bool = typer.Option(
        False, "--split-sentences", help="PubTator: one Doc per sentence instead of per document"
    ),
) -> None:
    """Convert an NER corpus into a .spacy file (DocBin), verify it and print the counts."""
    from .convert import ConversionError, convert_file, print_stats

    try:
        parsed_label_map = parse_label_map(label_map)
    except LabelMapError as err:
        raise typer.BadParameter(err.problem, param_hint="--label-map") from err
    try:
        stats = convert_file(
            input,
            output,
            fmt.value if fmt is not None else None,
            spans_key=spans_key,
            corpus_name=corpus,
            label_map=parsed_label_map,
            labels=parse_labels(labels),
            limit=limit,
            split_sentences=split_sentences,
        )
    except ConversionError as err:
        # unwrapped, so that "path:line:" stays on one line and can be copied
        typer.secho(f"✘ {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    print_stats(stats)


@app.command("evaluate")
def evaluate_cli(
    model: str = typer.Argument(..., help="Model to evaluate: a pipeline package name or path"),
    data: List[Path] = typer.Argument(
        ..., help="One .spacy file per corpus (corpus name: recorded in the docs, else the file name)"
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the scores as JSON", dir_okay=False),
    spans_key: str = typer.Option(DEFAULT_SPANS_KEY, "--spans-key", help="doc.spans key of the predicted and gold spans"),
    label_map: Optional[str] = typer.Option(
        None, "--label-map", help="Rename gold labels: OLD=NEW (all corpora) or CORPUS:OLD=NEW, comma-separated"
    ),
    prefix_labels: bool = typer.Option(
        False, "--prefix-labels", help="Prefix gold labels with the corpus name (model trained with prefix_labels)"
    ),
    strip_prefixes: bool = typer.Option(
        False,
        "--strip-prefixes",
        help="Remove corpus prefixes (CORPUS$) from predicted labels as sru_ner's strip_prefixes does ('joined' scores)",
    ),
    model_maps: bool = typer.Option(
        True, "--model-maps/--no-model-maps", help="Apply the label maps of the model's MultiCorpus training config"
    ),
    max_positive: Optional[int] = typer.Option(
        None,
        "--max-positive",
        min=0,
        help="Decode with this max_positive (most labels per span; 0: no limit) instead of the model's",
    ),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for CPU"),
    batch_size: int = typer.Option(64, "--batch-size", "-b", min=1, help="nlp.pipe batch size"),
) -> None:
    """Score a pipeline on several corpora, each only on the labels it annotates.

    Prints micro and per-label P/R/F per corpus and the macro average over corpora.
    """
    from .evaluate import evaluate_cli_main

    try:
        evaluate_cli_main(
            model,
            data,
            output=output,
            spans_key=spans_key,
            label_map=label_map,
            prefix_labels=prefix_labels,
            strip_prefixes=strip_prefixes,
            model_maps=model_maps,
            max_positive=max_positive,
            gpu_id=gpu_id,
            batch_size=batch_size,
        )
    except (ValueError, OSError) as err:
        typer.secho(f"✘ {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)


@app.command("tune-threshold")
def tune_threshold_cli(
    model: str = typer.Argument(..., help="Trained pipeline folder (or package name, with --output)"),
    data: List[Path] = typer.Argument(..., help="Dev .spacy file(s), one per corpus"),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Where to save the tuned pipeline (default: overwrite MODEL)", file_okay=False
    ),
    component: Optional[str] = typer.Option(None, "--component", "-c", help="Name of the sru_ner component"),
    grid: Optional[str] = typer.Option(None, "--grid", help="Comma-separated thresholds (default 0.10, 0.15, ..., 0.90)"),
    label_map: Optional[str] = typer.Option(
        None, "--label-map", help="Rename gold labels: OLD=NEW (all corpora) or CORPUS:OLD=NEW, comma-separated"
    ),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for CPU"),
    batch_size: int = typer.Option(64, "--batch-size", "-b", min=1, help="Docs per batch"),
    per_label: bool = typer.Option(
        False, "--per-label", help="Also pick one threshold per label (stored as label_thresholds)"
    ),
) -> None:
    """Pick the decision threshold on dev data and store it in the pipeline.

    The decoder runs once; each threshold is scored (micro F over the dev mentions)
    on the same step probabilities. With --per-label each label gets the threshold
    that maximises its own dev F. Writes threshold.json with every score.
    """
    from .threshold import tune_threshold_cli_main

    try:
        tune_threshold_cli_main(
            model, data, output=output, component=component, grid=grid, label_map=label_map,
            gpu_id=gpu_id, batch_size=batch_size, per_label=per_label,
        )
    except (ValueError, OSError, KeyError) as err:
        typer.secho(f"✘ {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)


@app.command(
    "train-rounds", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def train_rounds_cli(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="spaCy training config", exists=True, dir_okay=False),
    output: Path = typer.Argument(..., help="Output folder (rounds/, model-best, model-last, rounds.json)"),
    round_steps: int = typer.Option(..., "--round-steps", min=1, help="Updates per round (a multiple of eval_frequency)"),
    patience: int = typer.Option(..., "--patience", min=1, help="Stop after this many updates without a better dev score"),
    max_rounds: int = typer.Option(1, "--max-rounds", min=1, help="Rounds to run in this call"),
    plateau_factor: float = typer.Option(
        1.0, "--plateau-factor", help="After a round without a better dev score, scale the learning rate by this (1: off)"
    ),
    lr_scale: Optional[float] = typer.Option(
        None, "--lr-scale", help="Learning-rate scale (times the config's) for the rounds from this call on; default: the stored one"
    ),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for CPU"),
) -> None:
    """Train in rounds, each continuing from the last saved pipeline, until dev F
    stops improving. Call it again (e.g. in a new session) to go on; extra
    --section.key value arguments override the config as in spacy train."""
    from spacy.cli._util import parse_config_overrides

    from .resume import RoundsError, train_rounds

    try:
        state = train_rounds(
            config, output, round_steps=round_steps, patience=patience, max_rounds=max_rounds,
            plateau_factor=plateau_factor, lr_scale=lr_scale,
            overrides=parse_config_overrides(ctx.args), use_gpu=gpu_id,
        )
    except RoundsError as err:
        typer.secho(f"✘ {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    last = state["rounds"][-1] if state["rounds"] else None
    status = "converged" if state["converged"] else "not converged yet: run again to continue"
    if last is not None:
        typer.echo(
            f"✔ {len(state['rounds'])} round(s), {last['end_step']} updates; best dev score "
            f"{state['best_score']:.4f} at update {state['best_step']} ({status})"
        )


@app.command("render")
def render_cli(
    model: str = typer.Argument(..., help="Trained pipeline folder or package name"),
    data: List[Path] = typer.Argument(..., help="Test .spacy file(s), one per corpus"),
    output: Path = typer.Option(Path("spans.html"), "--output", "-o", help="HTML page to write", dir_okay=False),
    passages: int = typer.Option(3, "--passages", min=1, help="Passages per corpus"),
    sentences: int = typer.Option(10, "--sentences", min=1, help="Consecutive sentences per passage"),
    spans_key: str = typer.Option(DEFAULT_SPANS_KEY, "--spans-key", help="doc.spans key of the model's and gold spans"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for CPU"),
) -> None:
    """Write a displaCy page of the model's spans (with scores) above the gold
    spans, on passages of consecutive test sentences."""
    from .render import render_cli_main

    try:
        path = render_cli_main(model, data, output, spans_key=spans_key, n_passages=passages,
                               sentences=sentences, gpu_id=gpu_id)
    except (ValueError, OSError) as err:
        typer.secho(f"✘ {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    typer.echo(f"✔ Saved {path}")


@app.command("plot-curves")
def plot_curves_cli(
    output: Path = typer.Argument(..., help="PNG file to write", dir_okay=False),
    runs: List[str] = typer.Argument(..., help="NAME=CURVE.jsonl per run (written by spacy_sru_ner.CurveLogger.v1)"),
    title: str = typer.Option("", "--title", "-t", help="Figure title"),
    summary: Optional[Path] = typer.Option(None, "--summary", help="Also write the last/best scores as JSON"),
    per_corpus: bool = typer.Option(False, "--per-corpus", help="Also plot each corpus's dev F where recorded"),
) -> None:
    """Plot dev F against updates and against training seconds for several runs."""
    import srsly

    from .curves import plot_curves, summarize_curves
    from .named_args import named_path

    try:
        pairs = [named_path(run, what="NAME=CURVE.jsonl", title_required=True) for run in runs]
        plot_curves(pairs, output, title, per_corpus=per_corpus)
        rows = summarize_curves(pairs)
        for row in rows:
            last, best = row["last"], row["best"]
            typer.echo(
                f"{row['name']:<24} last: step {last['step']:>6} {last['train_seconds']:>8.0f} s F {100 * last['f']:5.1f}"
                f"   best: step {best['step']:>6} F {100 * best['f']:5.1f}"
            )
        if summary is not None:
            srsly.write_json(summary, rows)
        typer.echo(f"✔ Saved {output}")
    except (ValueError, OSError) as err:
        typer.secho(f"✘ {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)


@app.command("demo")
def demo_cli(
    output: Path = typer.Option(Path("demo_output"), "--output", "-o", help="Folder for the corpus, model and HTML"),
    max_steps: int = typer.Option(600, "--max-steps", min=1, help="Training steps (600: about 3 minutes on 2 CPU cores)"),
) -> None:
    """Train sru_ner on the bundled GENIA sample and print the nested spans it finds."""
    from .demo.run import run_demo

    run_demo(output, max_steps=max_steps)


# Options of both annotate and annotate-dask, declared once (typer copies an Option, so sharing one is safe)
INPUT_FORMAT_OPTION = typer.Option(TextFormat.jsonl, "--input-format", help="Input format")
OUTPUT_FORMAT_OPTION = typer.Option(TextFormat.jsonl, "--output-format", help="Output format")
BATCH_SIZE_OPTION = typer.Option(64, "--batch-size", "-b", min=1, help="nlp.pipe batch size")
SPANS_KEY_OPTION = typer.Option(
    None, "--spans-key", help="doc.spans key to write out (default: that of the sru_ner component)"
)
TEXT_FIELD_OPTION = typer.Option("text", "--text-field", help="JSONL input: field with the text")
ID_FIELD_OPTION = typer.Option("id", "--id-field", help="JSONL input: field with the document id")
INCLUDE_TEXT_OPTION = typer.Option(False, "--include-text", help="JSONL output: also write each text")


@app.command("annotate")
def annotate_cli(
    model: str = typer.Argument(..., help="Pipeline package name or path"),
    input: Path = typer.Argument(..., help="JSONL ({'id': ..., 'text': ...} per line) or PubTator file", dir_okay=False),
    output: Path = typer.Argument(..., help="Output file; if it exists, its ids are skipped and new ones appended", dir_okay=False),
    input_format: TextFormat = INPUT_FORMAT_OPTION,
    output_format: TextFormat = OUTPUT_FORMAT_OPTION,
    n_process: int = typer.Option(1, "--n-process", "-n", help="Worker processes for nlp.pipe (-1: all CPUs)"),
    batch_size: int = BATCH_SIZE_OPTION,
    spans_key: Optional[str] = SPANS_KEY_OPTION,
    text_field: str = TEXT_FIELD_OPTION,
    id_field: str = ID_FIELD_OPTION,
    include_text: bool = INCLUDE_TEXT_OPTION,
    max_chars: Optional[int] = typer.Option(
        None, "--max-chars", min=1, help="Longest text in characters (nlp.max_length); longer ones are bad lines"
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr"),
) -> None:
    """Annotate a JSONL or PubTator collection; resumable, skips bad lines (reported, exit code 0).

    Output: JSONL {"id", "entities": [{"start", "end", "label", "score", "text"}]} (character offsets), or PubTator.
    """
    from .annotate import AnnotateError, annotate, print_summary

    try:
        stats = annotate(
            model, input, output,
            input_format=input_format.value, output_format=output_format.value,
            n_process=n_process, batch_size=batch_size, spans_key=spans_key,
            text_field=text_field, id_field=id_field, include_text=include_text, progress=progress,
            max_chars=max_chars,
        )
    except AnnotateError as err:
        typer.secho(f"✘ {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    print_summary(stats)


@app.command("annotate-dask")
def annotate_dask_cli(
    model: str = typer.Argument(..., help="Pipeline package name or path (visible to every worker)"),
    inputs: str = typer.Argument(
        ..., help="Input partitions: a glob like 'parts/*.jsonl' (quoted), a folder or a comma-separated list"
    ),
    output_dir: Path = typer.Argument(..., help="Folder for one output file per input partition", file_okay=False),
    scheduler: str = typer.Option(
        "processes", "--scheduler", "-s",
        help="processes | threads | synchronous | distributed (local cluster) | address of a dask scheduler",
    ),
    n_workers: Optional[int] = typer.Option(None, "--n-workers", "-w", min=1, help="Worker processes (threads)"),
    input_format: TextFormat = INPUT_FORMAT_OPTION,
    output_format: TextFormat = OUTPUT_FORMAT_OPTION,
    batch_size: int = BATCH_SIZE_OPTION,
    spans_key: Optional[str] = SPANS_KEY_OPTION,
    text_field: str = TEXT_FIELD_OPTION,
    id_field: str = ID_FIELD_OPTION,
    include_text: bool = INCLUDE_TEXT_OPTION,
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show Dask's progress bar"),
) -> None:
    """Annotate many partition files with Dask, one model load per worker (needs the [dask] extra)."""
    from .annotate import AnnotateError
    from .distributed import run_cli

    try:
        run_cli(
            model, inputs, output_dir, scheduler=scheduler, n_workers=n_workers,
            input_format=input_format.value, output_format=output_format.value, batch_size=batch_size,
            spans_key=spans_key, text_field=text_field, id_field=id_field, include_text=include_text,
            progress=progress,
        )
    except AnnotateError as err:
        typer.secho(f"✘ {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
