"""Train in rounds until dev F stops improving, across sessions.

    python -m spacy_sru_ner train-rounds CONFIG OUTPUT --round-steps 4000 --patience 8000 [--max-rounds 1]

Round 0 is ``spacy train CONFIG`` for ``round_steps`` updates. Every later round
sources all pipeline components from the previous round's ``model-last`` (spaCy
resumes training of sourced components; the optimizer's moments start afresh)
and draws a new sample with ``seed + round``. A round killed part-way (a session
that ends) is taken as it stands the next time: spaCy saves ``model-last`` at
every evaluation, and the round's ``curve.jsonl`` says up to which update.

``patience`` counts updates without a better dev score over all rounds, like
spaCy's own ``[training] patience``; once it runs out, no more rounds start.
``plateau_factor`` (reduce on plateau): after a round that did not improve the
best dev score, the next rounds train at this factor times the learning rate
(``[training.optimizer] learn_rate``, a number or a schedule's ``initial_rate``).
``OUTPUT/model-best`` is the best evaluation of all rounds, ``OUTPUT/model-last``
the latest, ``OUTPUT/rounds.json`` the state, ``OUTPUT/curve.jsonl`` every
evaluation with the update and training seconds counted from round 0.

A call holds ``OUTPUT/train-rounds.lock`` while it runs: a second call on the
same folder fails at once instead of adopting (or deleting) the round that the
first one is training. A lock left by a killed call is taken over.
"""
import json
import os
import shutil
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from .curves import LOGGER_NAME

PathLike = Union[str, Path]
STATE_FILE = "rounds.json"
CURVE_FILE = "curve.jsonl"
LOCK_FILE = "train-rounds.lock"
#: an unreadable lock file younger than this is being written by a call that just took it
LOCK_WRITE_SECONDS = 10.0


class RoundsError(ValueError):
    """Settings or state that make a continued training impossible."""


def _lock_holder(path: Path) -> Optional[str]:
    """Who holds the lock file ``path`` ("process PID on HOST", or "another
    call" while the file is being written), or None if it no longer runs (its
    process is gone, or the file has been unreadable for a while: a call killed
    while writing it)."""
    try:
        holder = json.loads(path.read_text(encoding="utf8"))
        pid, host = int(holder["pid"]), str(holder["host"])
    except (OSError, ValueError, KeyError, TypeError):
        try:
            being_written = time.time() - path.stat().st_mtime < LOCK_WRITE_SECONDS
        except OSError:
            being_written = False
        return "another call" if being_written else None
    if host == socket.gethostname():  # on another host it cannot be checked from here: assume it runs
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # another user's process: it exists
    return f"process {pid} on {host}"


@contextmanager
def training_lock(output: Path) -> Iterator[None]:
    """Hold ``output/train-rounds.lock`` for the duration of the block, so that
    two calls never train in the same folder at once; a stale lock is taken over."""
    path = output / LOCK_FILE
    for attempt in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            holder = _lock_holder(path)
            if holder is not None or attempt:
                raise RoundsError(
                    f"{output} is being trained by {holder or 'another call'} (lock file {path}); wait for it to "
                    "end, or, if no train-rounds call runs on this folder, delete the lock file"
                )
            print(f"ℹ {path}: taking over the lock of a call that no longer runs")
            path.unlink(missing_ok=True)
    with os.fdopen(fd, "w", encoding="utf8") as file:
        json.dump({"pid": os.getpid(), "host": socket.gethostname()}, file)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def round_dir(output: Path, index: int) -> Path:
    return output / "rounds" / f"{index:03d}"


def load_state(output: Path) -> Dict[str, Any]:
    path = output / STATE_FILE
    if not path.exists():
        return {"rounds": [], "best_score": None, "best_step": None, "best_round": None, "converged": False}
    return json.loads(path.read_text(encoding="utf8"))


def round_models(output: Path) -> List[Tuple[Dict[str, Any], Path]]:
    """Each round recorded in a train-rounds folder's state, with the path of its
    model-last (which the caller checks: a copied or pruned folder may lack it)."""
    output = Path(output)
    if not (output / STATE_FILE).is_file():
        raise RoundsError(f"{output / STATE_FILE}: not found (a train-rounds output folder has one)")
    return [(record, round_dir(output, record["round"]) / "model-last") for record in load_state(output)["rounds"]]


def _read_curve(path: Path) -> List[Dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf8").splitlines() if line.strip()]


def scale_learn_rate(optimizer: Dict[str, Any], scale: float) -> Dict[str, Any]:
    """``[training.optimizer]`` with its learning rate times ``scale``."""
    rate = optimizer.get("learn_rate")
    if scale == 1.0:
        return dict(optimizer)
    if isinstance(rate, (int, float)):
        return {**optimizer, "learn_rate": rate * scale}
    if isinstance(rate, dict) and isinstance(rate.get("initial_rate"), (int, float)):
        return {**optimizer, "learn_rate": {**rate, "initial_rate": rate["initial_rate"] * scale}}
    raise RoundsError(
        f"cannot scale the learning rate {rate!r}: plateau_factor and lr_scale need [training.optimizer] learn_rate "
        "to be a number or a schedule with an initial_rate (or plateau_factor and lr_scale 1.0)"
    )


def round_config(
    config: Dict[str, Any], index: int, previous: Optional[Path], round_steps: int, log: Path, lr_scale: float = 1.0
) -> Any:
    """The config of round ``index``: the original one for round 0, else every
    pipeline component sourced from ``previous`` (a saved pipeline); the
    learning rate times ``lr_scale``."""
    from spacy.util import load_config

    cfg = config.copy()
    training = dict(cfg["training"])
    training["max_steps"] = round_steps
    training["patience"] = 0  # the rounds count patience themselves
    training["logger"] = {"@loggers": LOGGER_NAME, "path": str(log), "progress_bar": False}
    training["optimizer"] = scale_learn_rate(training["optimizer"], lr_scale)
    cfg["training"] = training
    seed = int(cfg["system"]["seed"]) + index if isinstance(cfg["system"].get("seed"), int) else index
    cfg["system"] = {**cfg["system"], "seed": seed}
    if previous is not None:
        saved = load_config(previous / "config.cfg")
        components = dict(cfg["components"])
        for name in saved["nlp"]["pipeline"]:
            components[name] = {"source": str(previous.resolve())}
        cfg["components"] = components
    return cfg


def _copy_model(src: Path, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)


def _record_round(
    output: Path, state: Dict[str, Any], index: int, seconds: Optional[float], plateau_factor: float = 1.0
) -> Dict[str, Any]:
    """Add round ``index`` (finished or interrupted) to ``state`` from its curve;
    without a better dev score, the learning rate of later rounds is scaled by
    ``plateau_factor``.

    A round that continues from a saved pipeline is first evaluated after one
    update: that scores the pipeline it started from, not what the round learned
    (with ``use_averages``, Thinc's running average starts at zero, so it scores
    the saved weights times about 0.8). It can be the best model and is kept as
    such, but the plateau rule asks whether the round's later evaluations beat
    the best score from before the round; a round interrupted before any such
    evaluation says nothing about a plateau and leaves the rate as it is."""
    folder = round_dir(output, index)
    curve = _read_curve(folder / CURVE_FILE)
    if not curve or not (folder / "model-last").is_dir():
        raise RoundsError(f"round {index} in {folder} has no evaluation or no model-last: nothing to continue from")
    previous = state["rounds"][-1] if state["rounds"] else None
    offset = previous["end_step"] if previous else 0
    seconds_offset = previous["end_train_seconds"] if previous else 0.0
    best = max(curve, key=lambda r: r["score"])
    record = {
        "round": index,
        "start_step": offset,
        "end_step": offset + int(curve[-1]["step"]),
        "end_train_seconds": seconds_offset + float(curve[-1]["train_seconds"]),
        "evaluations": len(curve),
        "best_score": float(best["score"]),
        "best_step": offset + int(best["step"]),
        "last_score": float(curve[-1]["score"]),
        "wall_seconds": seconds,
        "interrupted": seconds is None,
        "lr_scale": state.get("lr_scale", 1.0),
    }
    if state.get("commands"):
        record["call"] = len(state["commands"]) - 1  # which entry of "commands" ran this round
    state["rounds"].append(record)
    _write_curve(output, state)
    before = state["best_score"]
    trained = curve[1:] if index else curve
    if before is not None and trained and max(float(r["score"]) for r in trained) <= before:
        state["lr_scale"] = state.get("lr_scale", 1.0) * plateau_factor
    if before is None or record["best_score"] > before:
        state.update(best_score=record["best_score"], best_step=record["best_step"], best_round=index)
        best_dir = folder / "model-best"
        _copy_model(best_dir if best_dir.is_dir() else folder / "model-last", output / "model-best")
    _copy_model(folder / "model-last", output / "model-last")
    return record


def _write_curve(output: Path, state: Dict[str, Any]) -> None:
    """OUTPUT/curve.jsonl from the rounds' own curves, updates and training
    seconds counted from round 0 (rewritten whole, so a call that was killed
    half-way leaves nothing twice)."""
    lines = []
    seconds_offset = 0.0
    for record in state["rounds"]:
        curve = _read_curve(round_dir(output, record["round"]) / CURVE_FILE)
        for row in curve[: record["evaluations"]]:
            lines.append(json.dumps({**row, "round": record["round"], "step": record["start_step"] + int(row["step"]),
                                     "train_seconds": round(seconds_offset + float(row["train_seconds"]), 3)}))
        seconds_offset = record["end_train_seconds"]
    tmp = output / (CURVE_FILE + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf8")
    tmp.replace(output / CURVE_FILE)


def _patience_spent(state: Dict[str, Any], patience: int) -> bool:
    """Whether ``patience`` updates have passed since the best dev score."""
    return bool(state["rounds"]) and state["rounds"][-1]["end_step"] - state["best_step"] >= patience


def _save_state(output: Path, state: Dict[str, Any]) -> None:
    tmp = output / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf8")
    tmp.replace(output / STATE_FILE)


def train_rounds(
    config_path: PathLike,
    output: PathLike,
    *,
    round_steps: int,
    patience: int,
    max_rounds: int = 1,
    plateau_factor: float = 1.0,
    lr_scale: Optional[float] = None,
    overrides: Optional[Dict[str, Any]] = None,
    use_gpu: int = -1,
) -> Dict[str, Any]:
    """Run up to ``max_rounds`` more rounds of training; returns the state.
    ``lr_scale`` sets the learning-rate scale of the rounds from this call on
    (a schedule decided in advance); without it, the stored scale is used,
    which ``plateau_factor`` lowers after a round without a better dev score."""
    from spacy.util import load_config

    output = Path(output)
    if round_steps < 1 or patience < 1:
        raise RoundsError(f"round_steps ({round_steps}) and patience ({patience}) must be at least 1")
    if not 0.0 < plateau_factor <= 1.0:
        raise RoundsError(f"plateau_factor must be in (0, 1], got {plateau_factor}")
    if lr_scale is not None and lr_scale <= 0.0:
        raise RoundsError(f"lr_scale must be positive, got {lr_scale}")
    config = load_config(config_path, overrides=dict(overrides or {}), interpolate=False)
    if plateau_factor != 1.0 or lr_scale not in (None, 1.0):
        scale_learn_rate(config["training"]["optimizer"], 0.5)  # an unscalable rate fails now, not rounds later
    eval_frequency = int(config["training"]["eval_frequency"])
    if round_steps % eval_frequency:
        raise RoundsError(
            f"round_steps {round_steps} is not a multiple of [training] eval_frequency {eval_frequency} "
            f"in {config_path}: the last updates of a round would be lost to the next one"
        )
    output.mkdir(parents=True, exist_ok=True)
    with training_lock(output):
        return _run_rounds(config, config_path, output, round_steps, patience, max_rounds, plateau_factor,
                           lr_scale, overrides, use_gpu)


def _run_rounds(
    config: Any, config_path: PathLike, output: Path, round_steps: int, patience: int, max_rounds: int,
    plateau_factor: float, lr_scale: Optional[float], overrides: Optional[Dict[str, Any]], use_gpu: int,
) -> Dict[str, Any]:
    """The rounds of one ``train_rounds`` call, under its lock."""
    from spacy.cli.train import train as spacy_train

    state = load_state(output)
    state["command"] = " ".join(
        [f"python -m spacy_sru_ner train-rounds {config_path} {output} --round-steps {round_steps} --patience {patience}"]
        + ([f"--max-rounds {max_rounds}"] if max_rounds != 1 else [])
        + ([f"--plateau-factor {plateau_factor}"] if plateau_factor != 1.0 else [])
        + ([f"--lr-scale {lr_scale}"] if lr_scale is not None else [])
        + [f"--{key} {json.dumps(value) if not isinstance(value, str) else value}" for key, value in (overrides or {}).items()]
    )
    # a round that was started but not recorded (the session ended) is taken as it stands
    # (recorded as run by the call before this one)
    index = len(state["rounds"])
    if round_dir(output, index).is_dir():
        if _read_curve(round_dir(output, index) / CURVE_FILE) and (round_dir(output, index) / "model-last").is_dir():
            record = _record_round(output, state, index, seconds=None, plateau_factor=plateau_factor)
            print(f"ℹ round {index} was interrupted at update {record['end_step']}: continuing from it")
            index += 1
        else:
            shutil.rmtree(round_dir(output, index))
        _save_state(output, state)
    # every distinct call in order (a schedule may take several, e.g. a decayed call after the first)
    commands = state.setdefault("commands", [])
    if not commands or commands[-1] != state["command"]:
        commands.append(state["command"])
    if lr_scale is not None:
        state["lr_scale"] = lr_scale
    for _ in range(max_rounds):
        if _patience_spent(state, patience):
            state["converged"] = True
            break
        folder = round_dir(output, index)
        previous = round_dir(output, index - 1) / "model-last" if index else None
        cfg = round_config(config, index, previous, round_steps, folder / CURVE_FILE, state.get("lr_scale", 1.0))
        folder.mkdir(parents=True, exist_ok=True)
        cfg.to_disk(folder / "config.cfg")
        print(f"\n=== round {index}: {round_steps} updates from {previous or config_path} -> {folder}")
        start = time.perf_counter()
        spacy_train(folder / "config.cfg", folder, use_gpu=use_gpu)
        record = _record_round(
            output, state, index, seconds=round(time.perf_counter() - start, 1), plateau_factor=plateau_factor
        )
        _save_state(output, state)
        print(f"✔ round {index}: updates {record['start_step']}-{record['end_step']}, best dev {record['best_score']:.4f} "
              f"(overall {state['best_score']:.4f} at update {state['best_step']})")
        index += 1
    # converged with respect to this call's patience (a call with a larger patience goes on)
    state["converged"] = _patience_spent(state, patience)
    _save_state(output, state)
    return state
