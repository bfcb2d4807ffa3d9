"""scripts/evaluate.py --rounds: the train-rounds models and the summary rows that set the
multi-corpus model's macro-F against one model per corpus."""
import json
from pathlib import Path

from conftest import project_script


def _evaluate_script():
    return project_script("evaluate")


def test_find_round_models(tmp_path):
    evaluate = _evaluate_script()
    for name, end in (("multi", 8000), ("single_linnaeus", 4000), ("ner_bc2gm", 4000), ("genia_fm", 4000),
                      ("heldout_bc2gm", 4000)):
        (tmp_path / name).mkdir()
        state = {"rounds": [{"end_step": end}], "best_step": end - 1000, "converged": False}
        (tmp_path / name / "rounds.json").write_text(json.dumps(state))
    (tmp_path / "unfinished").mkdir()  # no rounds.json: not a model yet
    models = {m["name"]: m for m in evaluate.find_round_models(tmp_path, Path("corpus"))}
    assert sorted(models) == ["genia_fm", "heldout_bc2gm", "multi", "ner_bc2gm", "single_linnaeus"]
    assert models["genia_fm"]["tests"] == ["corpus/genia_fm/test.spacy"]
    assert (models["heldout_bc2gm"]["kind"], models["heldout_bc2gm"]["tests"]) == ("heldout", ["corpus/bc2gm/test.spacy"])
    assert models["multi"]["tests"] == [f"corpus/{c}/test.spacy" for c in evaluate.ROUNDS_MULTI_CORPORA]
    assert models["single_linnaeus"]["tests"] == ["corpus/linnaeus/test.spacy"]
    assert models["ner_bc2gm"]["model"] == str(tmp_path / "ner_bc2gm" / "model-best")
    assert (models["multi"]["max_steps"], models["multi"]["best_step"]) == (8000, 7000)


def test_summary_rows_per_kind_of_single_model(tmp_path):
    evaluate = _evaluate_script()

    def write(name, scores):
        corpora = {c: {"f": f} for c, f in scores.items()}
        macro = sum(scores.values()) / len(scores)
        (tmp_path / f"{name}.json").write_text(json.dumps({"corpora": corpora, "macro": {"f": macro}}))

    write("multi", {"bc2gm": 0.70, "linnaeus": 0.80})
    write("single_bc2gm", {"bc2gm": 0.75})
    write("single_linnaeus", {"linnaeus": 0.85})
    write("ner_bc2gm", {"bc2gm": 0.72})
    rows = evaluate.write_summary(tmp_path)["f1"]
    assert rows["multi"]["(macro)"] == 75.0
    assert rows["single (one model per corpus)"] == {"bc2gm": 75.0, "linnaeus": 85.0, "(macro)": 80.0}
    assert rows["ner (one model per corpus)"] == {"bc2gm": 72.0, "(macro)": 72.0}
    assert "| single (one model per corpus) | 75.00 | 85.00 | 80.00 |" in (tmp_path / "summary.md").read_text()


def test_models_scored_again_only_when_newer_than_their_metrics(tmp_path):
    import os

    evaluate = _evaluate_script()
    model = tmp_path / "ner_bc2gm" / "model-best"
    (model / "ner").mkdir(parents=True)
    (model / "ner" / "model").write_bytes(b"weights")
    info = {"name": "ner_bc2gm", "model": str(model)}
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    assert not evaluate._up_to_date(info, metrics)  # never scored
    out = metrics / "ner_bc2gm.json"
    out.write_text("{}")
    os.utime(model / "ner" / "model", (1, 1))
    os.utime(model / "ner", (1, 1))
    os.utime(model, (1, 1))
    assert evaluate._up_to_date(info, metrics)
    os.utime(model / "ner" / "model")  # a later round wrote new weights
    assert not evaluate._up_to_date(info, metrics)
    # a later round that did not beat model-best still changes the updates and convergence recorded
    os.utime(model / "ner" / "model", (1, 1))
    assert evaluate._up_to_date(info, metrics)
    (model.parent / "rounds.json").write_text("{}")
    assert not evaluate._up_to_date(info, metrics)
