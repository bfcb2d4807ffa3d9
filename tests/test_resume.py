"""`train-rounds`: training continued from the last saved pipeline, across calls."""
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import spacy

from spacy_sru_ner.convert import convert_file
from spacy_sru_ner.demo import DEMO_CONFIG, DEMO_DEV, DEMO_TRAIN
from spacy_sru_ner.resume import (
    CURVE_FILE,
    LOCK_FILE,
    RoundsError,
    load_state,
    round_dir,
    scale_learn_rate,
    train_rounds,
    training_lock,
)

TINY = {
    "components.sru_ner.model.hidden_width": 16,
    "components.sru_ner.model.tok2vec.embed.width": 16,
    "components.sru_ner.model.tok2vec.encode.width": 16,
    "components.sru_ner.model.tok2vec.encode.depth": 1,
    "training.eval_frequency": 4,
}


@pytest.fixture(scope="module")
def demo_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rounds_data")
    train, dev = folder / "train.spacy", folder / "dev.spacy"
    convert_file(DEMO_TRAIN, train, "genia", limit=24)
    convert_file(DEMO_DEV, dev, "genia", limit=8)
    return {"paths.train": str(train), "paths.dev": str(dev)}


def _weights(path):
    return spacy.load(path).get_pipe("sru_ner").model.to_bytes()


def test_rounds_continue_from_the_last_model(demo_paths, tmp_path):
    out = tmp_path / "out"
    overrides = {**demo_paths, **TINY}
    state = train_rounds(DEMO_CONFIG, out, round_steps=8, patience=1000, max_rounds=1, overrides=overrides)
    assert [r["round"] for r in state["rounds"]] == [0]
    assert state["rounds"][0]["end_step"] == 8 and not state["converged"]
    first_last = _weights(out / "model-last")
    # a second call sources round 0's model-last: its config says so, and the
    # model it starts from is round 0's (not a fresh initialisation)
    state = train_rounds(DEMO_CONFIG, out, round_steps=8, patience=1000, max_rounds=1, overrides=overrides)
    assert [(r["start_step"], r["end_step"]) for r in state["rounds"]] == [(0, 8), (8, 16)]
    config = (round_dir(out, 1) / "config.cfg").read_text()
    assert f'source = "{(round_dir(out, 0) / "model-last").resolve()}"' in config
    assert "seed = 1" in config
    assert _weights(out / "model-last") != first_last
    # the overall curve: every evaluation of both rounds, steps counted from round 0
    curve = [json.loads(line) for line in (out / CURVE_FILE).read_text().splitlines()]
    assert [r["step"] for r in curve] == [0, 4, 8, 8, 12, 16]
    assert [r["round"] for r in curve] == [0, 0, 0, 1, 1, 1]
    assert all(a["train_seconds"] <= b["train_seconds"] for a, b in zip(curve, curve[1:]))
    best = max(curve, key=lambda r: r["score"])
    assert state["best_score"] == best["score"]
    assert spacy.load(out / "model-best").pipe_names == ["sru_ner"]
    assert state["command"].startswith(f"python -m spacy_sru_ner train-rounds {DEMO_CONFIG} {out} --round-steps 8")
    assert f"--paths.train {demo_paths['paths.train']}" in state["command"]
    # the same call twice is one entry of "commands", and each round says which entry ran it
    assert state["commands"] == [state["command"]] and [r["call"] for r in state["rounds"]] == [0, 0]
    # scripts/round_scores.py: each round's model-last scored per corpus
    from conftest import project_script
    from spacy_sru_ner.evaluate import evaluate_corpora

    round_scores = project_script("round_scores")
    rows = round_scores.round_scores(out, [demo_paths["paths.dev"]])
    assert [(r["round"], r["end_step"], r["lr_scale"]) for r in rows] == [(0, 8, 1.0), (1, 16, 1.0)]
    expected = evaluate_corpora(spacy.load(out / "model-last"), [demo_paths["paths.dev"]])["corpora"]
    assert rows[1]["f"] == {name: corpus["f"] for name, corpus in expected.items()} and len(expected) == 1
    assert round_scores.markdown(rows).splitlines()[2].startswith("| 0 | 8 | 1 | ")


def test_interrupted_round_is_taken_as_it_stands(demo_paths, tmp_path):
    out = tmp_path / "out"
    overrides = {**demo_paths, **TINY}
    train_rounds(DEMO_CONFIG, out, round_steps=8, patience=1000, overrides=overrides)
    # a killed round: its folder holds a model-last and the evaluations so far, the state does not know it
    shutil.copytree(round_dir(out, 0), round_dir(out, 1))
    lines = (round_dir(out, 1) / CURVE_FILE).read_text().splitlines()[:2]
    (round_dir(out, 1) / CURVE_FILE).write_text("\n".join(lines) + "\n")
    state = train_rounds(DEMO_CONFIG, out, round_steps=8, patience=1000, overrides=overrides, plateau_factor=0.5)
    assert [(r["start_step"], r["end_step"], r["interrupted"]) for r in state["rounds"]] == [
        (0, 8, False), (8, 12, True), (12, 20, False)]
    # the adopted round repeats round 0's first evaluations, so it cannot beat round 0: reduce on
    # plateau halves the learning rate of the round after it
    assert state["rounds"][1]["best_score"] <= state["rounds"][0]["best_score"]
    assert [r["lr_scale"] for r in state["rounds"]] == [1.0, 1.0, 0.5]
    assert "learn_rate = 0.001\n" in (round_dir(out, 2) / "config.cfg").read_text()
    assert "--plateau-factor 0.5" in state["command"] and "--max-rounds" not in state["command"]
    # the adopted round was run by the first call, the round after it by the second
    assert len(state["commands"]) == 2 and [r["call"] for r in state["rounds"]] == [0, 0, 1]
    # patience: no round starts once the best score is `patience` updates old
    state = train_rounds(DEMO_CONFIG, out, round_steps=8, patience=1, max_rounds=4, overrides=overrides)
    if not state["converged"]:  # the best score was the last evaluation four times in a row
        pytest.skip("dev score improved at the end of every round")
    assert state["rounds"][-1]["end_step"] - state["best_step"] >= 1
    rounds = len(state["rounds"])
    state = train_rounds(DEMO_CONFIG, out, round_steps=8, patience=1, max_rounds=4, overrides=overrides)
    assert "--max-rounds 4" in state["command"]
    assert len(state["rounds"]) == rounds and load_state(out)["converged"]
    # a larger patience goes on training, and the state no longer says converged
    state = train_rounds(DEMO_CONFIG, out, round_steps=8, patience=1000, overrides=overrides)
    assert len(state["rounds"]) == rounds + 1 and not load_state(out)["converged"]


def test_round_steps_must_be_a_multiple_of_eval_frequency(demo_paths, tmp_path):
    with pytest.raises(RoundsError, match="eval_frequency 4"):
        train_rounds(DEMO_CONFIG, tmp_path, round_steps=6, patience=10, overrides={**demo_paths, **TINY})


def test_train_rounds_cli(demo_paths, tmp_path):
    args = [f"--{key}={value}" for key, value in {**demo_paths, **TINY}.items()]
    result = subprocess.run(
        [sys.executable, "-m", "spacy_sru_ner", "train-rounds", str(DEMO_CONFIG), str(tmp_path / "out"),
         "--round-steps", "4", "--patience", "100", *args],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 round(s), 4 updates" in result.stdout and "not converged yet" in result.stdout
    # --lr-scale: the next round trains at a rate decided in advance, and rounds.json says so
    result = subprocess.run(
        [sys.executable, "-m", "spacy_sru_ner", "train-rounds", str(DEMO_CONFIG), str(tmp_path / "out"),
         "--round-steps", "4", "--patience", "100", "--lr-scale", "0.25", *args],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    state = load_state(tmp_path / "out")
    assert [r["lr_scale"] for r in state["rounds"]] == [1.0, 0.25] and "--lr-scale 0.25" in state["command"]
    assert len(state["commands"]) == 2 and "--lr-scale" not in state["commands"][0]
    assert state["commands"][1] == state["command"]
    # every option that changes the training is in the recorded command; defaults are left out
    assert "--plateau-factor" not in state["command"] and "--max-rounds" not in state["command"]
    assert "learn_rate = 0.0005\n" in (round_dir(tmp_path / "out", 1) / "config.cfg").read_text()


def _write_lock(folder, pid, host=None):
    (folder / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname()}))


def test_a_second_call_on_a_folder_in_training_fails(demo_paths, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    _write_lock(out, os.getpid())  # a live process holds the folder
    with pytest.raises(RoundsError, match=f"being trained by process {os.getpid()}.*{LOCK_FILE}"):
        train_rounds(DEMO_CONFIG, out, round_steps=4, patience=10, overrides={**demo_paths, **TINY})
    assert not round_dir(out, 0).exists() and (out / LOCK_FILE).exists()
    _write_lock(out, 1, host="another-machine")  # cannot be checked from here: taken as running
    with pytest.raises(RoundsError, match="on another-machine"):
        with training_lock(out):
            pass


def test_lock_of_a_call_that_no_longer_runs_is_taken_over(tmp_path):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _write_lock(tmp_path, int(ended.stdout))
    with training_lock(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_FILE).exists()
    (tmp_path / LOCK_FILE).write_text("")  # being written by a call that just took it
    with pytest.raises(RoundsError, match="being trained"):
        with training_lock(tmp_path):
            pass
    os.utime(tmp_path / LOCK_FILE, (0, 0))  # left half-written by a call killed long ago
    with pytest.raises(ZeroDivisionError):
        with training_lock(tmp_path):
            1 / 0
    assert not (tmp_path / LOCK_FILE).exists()  # released when the call fails too


def test_lr_scale_must_be_positive(demo_paths, tmp_path):
    with pytest.raises(RoundsError, match="lr_scale must be positive"):
        train_rounds(DEMO_CONFIG, tmp_path, round_steps=4, patience=10, lr_scale=0.0, overrides={**demo_paths, **TINY})


def test_scale_learn_rate():
    assert scale_learn_rate({"learn_rate": 0.002}, 0.5) == {"learn_rate": 0.001}
    schedule = {"@schedules": "warmup_linear.v1", "initial_rate": 5e-5, "warmup_steps": 250, "total_steps": 20000}
    assert scale_learn_rate({"learn_rate": schedule}, 0.5)["learn_rate"] == {**schedule, "initial_rate": 2.5e-5}
    assert scale_learn_rate({"learn_rate": {"@schedules": "other"}}, 1.0) == {"learn_rate": {"@schedules": "other"}}
    with pytest.raises(RoundsError, match="cannot scale the learning rate"):
        scale_learn_rate({"learn_rate": {"@schedules": "other"}}, 0.5)


def test_unscalable_learning_rate_fails_before_any_round(demo_paths, tmp_path):
    schedule = {"@schedules": "compounding.v1", "start": 0.001, "stop": 0.002, "compound": 1.001}
    overrides = {**demo_paths, **TINY, "training.optimizer.learn_rate": schedule}
    for settings in ({"plateau_factor": 0.5}, {"lr_scale": 0.5}):
        with pytest.raises(RoundsError, match="cannot scale the learning rate"):
            train_rounds(DEMO_CONFIG, tmp_path / "out", round_steps=4, patience=10, overrides=overrides, **settings)
        assert not round_dir(tmp_path / "out", 0).exists()


def _fake_round(output, index, scores):
    folder = round_dir(output, index)
    (folder / "model-last").mkdir(parents=True)
    rows = [{"step": 4 * i, "train_seconds": float(i), "score": s} for i, s in enumerate(scores)]
    (folder / CURVE_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize("scores,halved,best", [
    ([0.7, 0.4, 0.5], True, 0.7),  # only the first evaluation (the start model after one update) beat 0.6
    ([0.5, 0.65, 0.55], False, 0.65),  # a trained evaluation beat it
    ([0.5, 0.6], True, 0.6),  # equal is no better
])
def test_plateau_rule_ignores_a_rounds_first_evaluation(tmp_path, scores, halved, best):
    from spacy_sru_ner.resume import _record_round

    state = {"rounds": [], "best_score": None, "best_step": None}
    _fake_round(tmp_path, 0, [0.1, 0.6])
    _record_round(tmp_path, state, 0, seconds=1.0, plateau_factor=0.5)
    assert state["best_score"] == 0.6 and state.get("lr_scale", 1.0) == 1.0
    _fake_round(tmp_path, 1, scores)
    _record_round(tmp_path, state, 1, seconds=1.0, plateau_factor=0.5)
    assert state["best_score"] == best
    assert state.get("lr_scale", 1.0) == (0.5 if halved else 1.0)
    assert (tmp_path / "model-best").is_dir()


def test_a_round_interrupted_before_a_trained_evaluation_is_no_plateau(tmp_path):
    """A session that ends just after a round started leaves only the round's first
    evaluation (the model it started from): the next call continues at the same rate."""
    from spacy_sru_ner.resume import _record_round

    state = {"rounds": [], "best_score": None, "best_step": None}
    _fake_round(tmp_path, 0, [0.1, 0.6])
    _record_round(tmp_path, state, 0, seconds=1.0, plateau_factor=0.5)
    _fake_round(tmp_path, 1, [0.55])
    record = _record_round(tmp_path, state, 1, seconds=None, plateau_factor=0.5)
    assert record["interrupted"] and record["end_step"] == record["start_step"]
    assert state.get("lr_scale", 1.0) == 1.0 and state["best_score"] == 0.6
