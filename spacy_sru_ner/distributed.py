"""Annotate a partitioned collection with Dask: ``python -m spacy_sru_ner annotate-dask``.

Each input file (a JSONL or PubTator partition) is one task; the task writes
one output file of the same stem into ``output_dir`` with
:func:`spacy_sru_ner.annotate.annotate_file`, so the output format, the
bad-line handling and resuming (rerun the same command after a crash: finished
partitions are skipped document by document) are those of ``annotate``.

The model is loaded once per worker (per worker thread, as a spaCy pipeline is
not meant to be shared between threads) and cached in the worker for all the
partitions it gets; each partition's report carries the worker's process id and
how often that process loaded the model.

Schedulers: ``"processes"`` (local worker processes, the default),
``"threads"``, ``"synchronous"`` (debugging), ``"distributed"`` (a local
``dask.distributed`` cluster of ``n_workers`` single-threaded processes), or
the address of a running ``dask.distributed`` scheduler (``tcp://host:8786``),
whose workers must see the model, the inputs and ``output_dir`` at the same
paths (a shared file system) and have this package installed.

Needs ``pip install "spacy-sru-ner[dask]"``.
"""
import glob
import os
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from .annotate import AnnotateError, annotate_file, check_format, load_model
from .formats import TEXT_SUFFIX, TextFormat

LOCAL_SCHEDULERS = ("processes", "threads", "synchronous", "sync", "single-threaded")
INPUT_SUFFIXES = (*TEXT_SUFFIX.values(), ".txt")  # what a folder of partitions is searched for

# per-worker model cache: one pipeline per (thread, model); loads counted per process
_local = threading.local()
_loads: Counter = Counter()
_loads_lock = threading.Lock()


def get_model(model: str, torch_threads: Optional[int] = 1):
    """The pipeline ``model`` of this worker thread, loaded on first use."""
    models: Dict[str, Any] = getattr(_local, "models", None)
    if models is None:
        models = _local.models = {}
    nlp = models.get(model)
    if nlp is None:
        if torch_threads:
            import torch

            torch.set_num_threads(torch_threads)
        nlp = models[model] = load_model(model)
        with _loads_lock:
            _loads[model] += 1
    return nlp


def model_loads(model: str) -> int:
    """How often this process has loaded ``model``."""
    return _loads[model]


def expand_inputs(inputs: Union[str, Path, Sequence[Union[str, Path]]]) -> List[Path]:
    """Input files from a glob, a folder (its ``*.jsonl`` / ``*.pubtator`` / ``*.txt`` files), a
    comma-separated list, or a list of any of these; sorted, without repeats."""
    if isinstance(inputs, (str, Path)):
        items = [part for part in str(inputs).split(",") if part.strip()] if "," in str(inputs) else [str(inputs)]
    else:
        items = [str(item) for item in inputs]
    paths: List[Path] = []
    for item in items:
        item = item.strip()
        if Path(item).is_dir():
            found = [p for p in Path(item).iterdir() if p.is_file() and p.suffix in INPUT_SUFFIXES]
        elif any(ch in item for ch in "*?["):
            found = [Path(p) for p in glob.glob(item) if Path(p).is_file()]
        elif Path(item).is_file():
            found = [Path(item)]
        else:
            raise AnnotateError(f"input not found: {item}")
        if not found:
            raise AnnotateError(f"no input files match {item}")
        paths.extend(found)
    unique = sorted({p.resolve(): p for p in paths}.values(), key=lambda p: str(p))
    return unique


def output_path_for(input_path: Path, output_dir: Path, output_format: str) -> Path:
    return output_dir / (input_path.stem + TEXT_SUFFIX[output_format])


def _quiet(message: str) -> None:
    pass


def _annotate_partition(paths: List[str], *, model: str, output_dir: str, torch_threads: Optional[int],
                        options: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Dask task: annotate each input path of the partition with this worker's cached model."""
    reports = []
    for path in paths:
        nlp = get_model(model, torch_threads)
        output = output_path_for(Path(path), Path(output_dir), options.get("output_format", TextFormat.jsonl.value))

        # bad-line messages travel back in the report (a remote worker's stderr is out of sight)
        stats = annotate_file(nlp, path, output, progress=False, n_process=1, log=_quiet, **options)
        report = stats.to_dict()
        report.update(
            pid=os.getpid(), host=socket.gethostname(), thread=threading.get_ident(), model_loads=model_loads(model)
        )
        reports.append(report)
    return reports


def annotate_collection(
    model: str,
    inputs: Union[str, Path, Sequence[Union[str, Path]]],
    output_dir: Union[str, Path],
    *,
    scheduler: str = "processes",
    n_workers: Optional[int] = None,
    batch_size: int = 64,
    input_format: str = TextFormat.jsonl.value,
    output_format: str = TextFormat.jsonl.value,
    spans_key: Optional[str] = None,
    text_field: str = "text",
    id_field: str = "id",
    include_text: bool = False,
    torch_threads: Optional[int] = 1,
    progress: bool = False,
) -> List[Dict[str, Any]]:
    """Annotate every input partition into ``output_dir`` (one output file each) with Dask.

    Returns one report per partition, in input order: the counts of
    :class:`spacy_sru_ner.annotate.AnnotateStats` plus ``pid``, ``host``,
    ``thread`` and ``model_loads`` (loads of the model by that process so far).
    """
    try:
        import dask.bag as db
    except ImportError:
        raise AnnotateError('annotate-dask needs Dask: pip install "spacy-sru-ner[dask]"') from None
    check_format(output_format, "output")
    paths = expand_inputs(inputs)
    output_dir = Path(output_dir)
    outputs: Dict[Path, Path] = {}
    for path in paths:
        out = output_path_for(path, output_dir, output_format)
        if out in outputs:
            raise AnnotateError(f"{outputs[out]} and {path} would both be written to {out}: rename one")
        if out.resolve() == path.resolve():
            raise AnnotateError(f"the output of {path} would overwrite it: choose another output folder")
        outputs[out] = path
    output_dir.mkdir(parents=True, exist_ok=True)
    # a local model folder is passed as an absolute path: workers may run elsewhere
    model_ref = str(Path(model).resolve()) if Path(model).exists() else model
    options = dict(
        input_format=input_format, output_format=output_format, batch_size=batch_size, spans_key=spans_key,
        text_field=text_field, id_field=id_field, include_text=include_text,
    )
    bag = db.from_sequence([str(p.resolve()) for p in paths], partition_size=1)
    tasks = bag.map_partitions(
        _annotate_partition, model=model_ref, output_dir=str(output_dir.resolve()),
        torch_threads=torch_threads, options=options,
    )
    if scheduler in LOCAL_SCHEDULERS:
        kwargs: Dict[str, Any] = {"scheduler": scheduler}
        if n_workers and scheduler in ("processes", "threads"):
            kwargs["num_workers"] = n_workers
        if progress:
            from dask.diagnostics import ProgressBar

            with ProgressBar(out=sys.stderr):
                return list(tasks.compute(**kwargs))
        return list(tasks.compute(**kwargs))
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise AnnotateError(
            f'scheduler {scheduler!r} needs dask.distributed: pip install "spacy-sru-ner[dask]"'
        ) from None
    if scheduler == "distributed":
        cluster = LocalCluster(
            n_workers=n_workers or max(1, (os.cpu_count() or 2) // 2), threads_per_worker=1, processes=True,
            dashboard_address=None,
        )
        client = Client(cluster)
    else:
        cluster = None
        client = Client(scheduler)
    try:
        futures = client.compute(tasks.to_delayed())
        if progress:
            from distributed import progress as show_progress

            show_progress(futures)
        results = client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return [report for partition in results for report in partition]


def print_reports(reports: List[Dict[str, Any]], seconds: float, out=None) -> None:
    out = out or sys.stdout
    totals: Counter = Counter()
    for r in reports:
        print(
            f"  {Path(r['input']).name} -> {Path(r['output']).name}: read {r['read']}, annotated {r['annotated']}, "
            f"done {r['done']}, bad {r['bad']} (worker pid {r['pid']} on {r['host']}, model loads {r['model_loads']})",
            file=out,
        )
        for key in ("read", "annotated", "done", "bad", "entities"):
            totals[key] += r[key]
    for r in reports:
        for message in r["bad_messages"]:
            print(f"✘ {message}", file=sys.stderr)
        if r["bad"] > len(r["bad_messages"]):
            print(f"  ({r['bad'] - len(r['bad_messages'])} more bad lines in {r['input']})", file=sys.stderr)
    workers = {(r["host"], r["pid"]) for r in reports}
    print(
        f"✔ {len(reports)} partitions on {len(workers)} worker process(es): read {totals['read']}, "
        f"annotated {totals['annotated']} ({totals['entities']} entities), skipped as done {totals['done']}, "
        f"bad {totals['bad']} in {seconds:.1f} s",
        file=out,
    )
    if totals["bad"]:
        print(f"⚠ {totals['bad']} bad input record(s) skipped (messages on stderr); exit code 0", file=out)


def run_cli(model: str, inputs: str, output_dir: Path, **kwargs: Any) -> List[Dict[str, Any]]:
    start = time.perf_counter()
    reports = annotate_collection(model, inputs, output_dir, **kwargs)
    print_reports(reports, time.perf_counter() - start)
    return reports
