"""`spacy train` / `spacy evaluate` end to end on the bundled demo config."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy

from spacy_sru_ner.convert import convert_file
from spacy_sru_ner.demo import DEMO_CONFIG, DEMO_DEV, DEMO_TRAIN

TINY = [
    "--components.sru_ner.model.hidden_width=32",
    "--components.sru_ner.model.tok2vec.embed.width=32",
    "--components.sru_ner.model.tok2vec.encode.width=32",
    "--components.sru_ner.model.tok2vec.encode.depth=1",
    "--training.max_steps=12",
    "--training.eval_frequency=6",
]


def _run(args, cwd):
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_spacy_train_and_evaluate_end_to_end(tmp_path):
    train, dev = tmp_path / "train.spacy", tmp_path / "dev.spacy"
    stats = convert_file(DEMO_TRAIN, train, "genia", limit=40)
    assert stats.written.docs == 40
    convert_file(DEMO_DEV, dev, "genia", limit=20)
    curve = tmp_path / "curve.jsonl"
    out = _run(
        [sys.executable, "-m", "spacy", "train", str(DEMO_CONFIG), "--output", str(tmp_path / "out"),
         "--paths.train", str(train), "--paths.dev", str(dev), *TINY,
         "--training.logger.@loggers=spacy_sru_ner.CurveLogger.v1", f"--training.logger.path={curve}"],
        tmp_path,
    )
    assert "LOSS SRU_NER" in out and "SPANS_SRU_" in out
    # the curve logger: one record per evaluation (steps 0, 6, 12), training time growing
    records = [json.loads(line) for line in curve.read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 6, 12]
    assert all(0 <= a["train_seconds"] <= b["train_seconds"] for a, b in zip(records, records[1:]))
    assert all(r["score"] == r["scores"]["spans_sru_ner_f"] for r in records)
    png = tmp_path / "curves.png"
    out = _run(
        [sys.executable, "-m", "spacy_sru_ner", "plot-curves", str(png), f"tiny={curve}", f"again={curve}",
         "--summary", str(tmp_path / "summary.json")],
        tmp_path,
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [row["last"]["step"] for row in summary] == [12, 12]
    model_dir = tmp_path / "out" / "model-last"
    meta = json.loads((model_dir / "meta.json").read_text())
    assert "spans_sru_ner_f" in meta["performance"]
    nlp = spacy.load(model_dir)
    assert nlp.pipe_names == ["sru_ner"]
    assert len(nlp.get_pipe("sru_ner").labels) == 5
    doc = nlp("IL-2 gene expression requires NF-kappa B activation in T cells .")
    assert "sru_ner" in doc.spans
    out = _run(
        [sys.executable, "-m", "spacy", "evaluate", str(model_dir), str(dev), "--spans-key", "sru_ner",
         "--output", str(tmp_path / "scores.json")],
        tmp_path,
    )
    assert "SPAN F" in out
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert set(scores["spans_sru_ner_per_type"]) <= {"DNA", "RNA", "protein", "cell_line", "cell_type"}
    # tune-threshold: the decoder runs once, every threshold is scored, the best is stored
    tuned = tmp_path / "tuned"
    out = _run(
        [sys.executable, "-m", "spacy_sru_ner", "tune-threshold", str(model_dir), str(dev), "--output", str(tuned),
         "--grid", "0.3,0.5,0.7"],
        tmp_path,
    )
    result = json.loads((tuned / "threshold.json").read_text())
    assert set(result["scores"]) == {"0.30", "0.50", "0.70"} and result["previous"] == 0.5
    best = result["threshold"]
    assert result["scores"][f"{best:.2f}"]["f"] == max(s["f"] for s in result["scores"].values())
    reloaded = spacy.load(tuned)
    assert reloaded.get_pipe("sru_ner").cfg["threshold"] == best
    assert reloaded.config["components"]["sru_ner"]["threshold"] == best


def test_named_path():
    """TITLE=PATH arguments of the CLI and the scripts: split at the last '=', a bare path is
    titled by its stem unless a title is required, and an empty title or path is an error."""
    from spacy_sru_ner.named_args import named_path

    assert named_path("x=y=z.json") == ("x=y", Path("z.json"))
    assert named_path("sru_ner, depth 8=training/a/model-best") == ("sru_ner, depth 8", Path("training/a/model-best"))
    assert named_path("metrics/genia_fm.json") == ("genia_fm", Path("metrics/genia_fm.json"))
    for bad in ("=a.json", "title=", ""):
        with pytest.raises(ValueError, match="expected TITLE=PATH"):
            named_path(bad)
    with pytest.raises(ValueError, match="expected NAME=CURVE.jsonl, got 'curve.jsonl'"):
        named_path("curve.jsonl", what="NAME=CURVE.jsonl", title_required=True)


def test_plot_curves_reports_a_bad_curve_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"step": 0, "score": 0.1, "train_seconds": 1}\nnot json\n')
    result = subprocess.run(
        [sys.executable, "-m", "spacy_sru_ner", "plot-curves", str(tmp_path / "x.png"), f"bad={bad}"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1 and f"{bad}:2" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "spacy_sru_ner", "plot-curves", str(tmp_path / "x.png"), str(bad)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1 and "expected NAME=CURVE.jsonl" in result.stderr


def test_plot_curves_per_corpus(tmp_path):
    """--per-corpus adds a dashed line per corpus where the evaluations recorded one."""
    from spacy_sru_ner.curves import corpus_f_scores, plot_curves

    records = [
        {"step": 0, "train_seconds": 0.0, "score": 0.1, "scores": {"spans_sru_ner_f": 0.1}},
        {"step": 100, "train_seconds": 5.0, "score": 0.5, "scores": {
            "spans_sru_ner_f": 0.5,
            "spans_sru_ner_per_corpus": {"bc2gm": {"p": 0.4, "r": 0.4, "f": 0.4}, "linnaeus": {"p": 1, "r": 0.5, "f": 0.6}}}},
    ]
    curve = tmp_path / "multi.jsonl"
    curve.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert corpus_f_scores(records[0]) == {} and corpus_f_scores(records[1]) == {"bc2gm": 0.4, "linnaeus": 0.6}
    import matplotlib.pyplot as plt

    shown = {}
    original = plt.Axes.plot

    def spy(ax, *args, **kwargs):
        shown.setdefault(kwargs.get("label"), list(args[1]))
        return original(ax, *args, **kwargs)

    plt.Axes.plot = spy
    try:
        assert plot_curves([("multi", curve)], tmp_path / "c.png", per_corpus=True).stat().st_size > 0
    finally:
        plt.Axes.plot = original
    assert shown == {"multi": [10.0, 50.0], "multi: bc2gm": [40.0], "multi: linnaeus": [60.0]}


def test_compare_evals_table(tmp_path):
    """scripts/compare_evals.py: one row per evaluation, P / R / F per corpus and the macro-F."""
    from conftest import project_script

    compare = project_script("compare_evals")

    def write(name, scores):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"corpora": {c: {"p": p, "r": r, "f": f} for c, (p, r, f) in scores.items()}}))
        return path

    a = write("a", {"bc2gm": (0.5, 0.5, 0.5), "linnaeus": (1.0, 0.5, 0.6)})
    b = write("b", {"bc2gm": (0.75, 0.75, 0.75)})
    text = compare.table([("base", a), ("more bc2gm", b)])
    lines = text.splitlines()
    assert lines[0] == "| model | bc2gm | linnaeus | macro-F |"
    assert lines[2] == "| base | 50.0 / 50.0 / 50.0 | 100.0 / 50.0 / 60.0 | **55.0** |"
    assert lines[3] == "| more bc2gm | 75.0 / 75.0 / 75.0 | – | – |"
    assert compare.table([("base", a)], f_only=True).splitlines()[2] == "| base | 50.0 | 60.0 | **55.0** |"
    with pytest.raises(FileNotFoundError, match="missing.json"):
        compare.table([("gone", tmp_path / "missing.json")])


def test_compare_evals_seeds(tmp_path):
    """scripts/compare_evals.py --seeds: commas separate seeds of one model; a row per model with
    each seed's F, the mean P / R / F and the sample standard deviation of F."""
    from conftest import project_script

    compare = project_script("compare_evals")

    def write(name, p, r, f, corpus="genia_fm"):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"corpora": {corpus: {"p": p, "r": r, "f": f}}}))
        return path

    a = [write("a0", 0.7, 0.6, 0.70), write("a1", 0.8, 0.7, 0.72), write("a2", 0.9, 0.8, 0.74)]
    b = [write("b0", 0.5, 0.5, 0.5)]
    lines = compare.seed_table([("sru_ner", Path(",".join(map(str, a)))), ("spancat", b[0])]).splitlines()
    assert lines[0] == "| model | run 1 F | run 2 F | run 3 F | mean P / R / F | sd of F |"
    assert lines[2] == "| sru_ner | 70.00 | 72.00 | 74.00 | 80.0 / 70.0 / **72.00** | 2.00 |"
    assert lines[3] == "| spancat | 50.00 | – | – | 50.0 / 50.0 / **50.00** | – |"
    other = write("c", 0.5, 0.5, 0.5, corpus="ncbi_disease")
    with pytest.raises(ValueError, match="different corpora"):
        compare.seed_table([("mixed", Path(f"{b[0]},{other}"))])
    # "+" joins one run's evaluations (one model per corpus); --per-corpus: each corpus's mean F
    c = [write("c0", 0.6, 0.6, 0.60, corpus="ncbi_disease"), write("c1", 0.8, 0.8, 0.80, corpus="ncbi_disease")]
    joined = Path(f"{a[0]}+{c[0]},{a[1]}+{c[1]}")
    lines = compare.seed_table([("singles", joined)], per_corpus=True).splitlines()
    assert lines[0] == "| model | run 1 F | run 2 F | genia_fm F | ncbi_disease F | mean P / R / F | sd of F |"
    assert lines[2] == "| singles | 65.00 | 76.00 | 71.0 | 70.0 | 72.5 / 67.5 / **70.50** | 7.78 |"


def test_compare_evals_per_label(tmp_path):
    """scripts/compare_evals.py --per-label: a row per corpus and label, a column per run; a run
    given as several comma-joined evaluations (one model per corpus) fills one column."""
    from conftest import project_script

    compare = project_script("compare_evals")

    def write(name, corpora):
        path = tmp_path / f"{name}.json"
        data = {c: {"p": 0, "r": 0, "f": 0, "per_type": {l: {"p": p, "r": r, "f": f} for l, (p, r, f) in labels.items()}}
                for c, labels in corpora.items()}
        path.write_text(json.dumps({"corpora": data}))
        return path

    multi = write("multi", {"bc5cdr": {"Chemical": (0.9, 0.8, 0.85), "Disease": (0.7, 0.7, 0.7)}, "linnaeus": {"Species": (1.0, 0.5, 0.6)}})
    single_a = write("a", {"bc5cdr": {"Chemical": (0.8, 0.8, 0.8), "Disease": (0.6, 0.6, 0.6)}})
    single_b = write("b", {"linnaeus": {"Species": (0.5, 0.5, 0.5)}})
    lines = compare.label_table([("multi", multi), ("singles", Path(f"{single_a},{single_b}"))], f_only=True).splitlines()
    assert lines[0] == "| corpus | label | multi | singles |"
    assert lines[2:] == ["| bc5cdr | Chemical | 85.0 | 80.0 |", "| bc5cdr | Disease | 70.0 | 60.0 |", "| linnaeus | Species | 60.0 | 50.0 |"]
    assert compare.label_table([("multi", multi), ("a", single_a)]).splitlines()[4] == "| linnaeus | Species | 100.0 / 50.0 / 60.0 | – |"
    native = write("native", {"linnaeus": {"species": (0.4, 0.4, 0.4)}})
    assert compare.label_table([("multi", multi), ("native", native)], f_only=True).splitlines()[4] == "| linnaeus | Species | 60.0 | – |"
    maps = {"linnaeus": {"species": "Species"}}
    assert compare.label_table([("multi", multi), ("native", native)], f_only=True, label_maps=maps).splitlines()[4] == "| linnaeus | Species | 60.0 | 40.0 |"
    config = tmp_path / "maps.cfg"
    config.write_text("[corpora]\n\n[corpora.train]\n\n[corpora.train.label_maps]\n\n[corpora.train.label_maps.linnaeus]\nspecies = \"Species\"\n")
    assert compare.read_label_maps(config) == maps
    # a corpus-prefixed model's labels meet the plain ones on their own corpus's rows only
    prefixed = write("prefixed", {"linnaeus": {"linnaeus$Species": (0.3, 0.3, 0.3), "bc5cdr$Chemical": (0.1, 0.1, 0.1)}})
    rows = compare.label_table([("prefixed", prefixed), ("native", native)], f_only=True, label_maps=maps).splitlines()
    assert rows[2:] == ["| linnaeus | Species | 30.0 | 40.0 |", "| linnaeus | bc5cdr$Chemical | 10.0 | – |"]


def test_pipeline_speed_table(tmp_path):
    """benchmarks/pipeline_speed.py: a row per pipeline with its words/s; an empty or missing
    corpus is an error that names the file."""
    from spacy.tokens import DocBin

    from benchmarks.pipeline_speed import main

    nlp = spacy.blank("en")
    nlp.to_disk(tmp_path / "blank")
    corpus = tmp_path / "test.spacy"
    docs = [nlp("IL-2 gene expression requires NF-kappa B."), nlp("T cells.")]
    DocBin(docs=docs).to_disk(corpus)
    main([str(corpus), f"blank={tmp_path / 'blank'}", "--repeat", "2", "--output", str(tmp_path / "speed.md")])
    lines = (tmp_path / "speed.md").read_text(encoding="utf8").splitlines()
    assert lines[0].startswith(f"2 texts, {sum(len(doc) for doc in docs)} words of")
    assert lines[2] == "| pipeline | words/s (median) | slowest / fastest run |"
    title, median, spread = [cell.strip() for cell in lines[4].strip("|").split("|")]
    assert title == "blank" and float(median.replace(",", "")) > 0
    DocBin().to_disk(tmp_path / "empty.spacy")
    with pytest.raises(ValueError, match="empty.spacy holds no documents"):
        main([str(tmp_path / "empty.spacy"), str(tmp_path / "blank")])
    with pytest.raises(FileNotFoundError, match="missing.spacy"):
        main([str(tmp_path / "missing.spacy"), str(tmp_path / "blank")])


def test_missed_mentions_compare():
    """scripts/missed_mentions.py: per model its counts; per ordered pair the mention texts the
    first misses (or adds) more often than the second; TITLE=MODEL:LABEL parsing."""
    from collections import Counter

    from conftest import project_script

    mm = project_script("missed_mentions")
    assert mm._model_spec("multi=training/m/model-best:linnaeus$Species") == (
        "multi", Path("training/m/model-best"), "linnaeus$Species"
    )
    with pytest.raises(ValueError, match="TITLE=MODEL:LABEL"):
        mm._model_spec("multi=training/m/model-best")
    base = {"model": "m", "label": "Species", "tp": 3, "fp": 1, "fn": 2, "p": 0.75, "r": 0.6, "f": 2 / 3}
    results = {
        "multi": dict(base, missed=Counter({"b . mallei": 3, "human": 1}), spurious=Counter({"korea": 1})),
        "single": dict(base, missed=Counter({"human": 2, "wheat": 1}), spurious=Counter()),
    }
    out = mm.compare(results, top=5)
    assert out["models"]["multi"]["f"] == pytest.approx(2 / 3)
    assert out["pairs"]["multi vs single"]["missed_more"] == [("b . mallei", 3)]
    assert out["pairs"]["single vs multi"]["missed_more"] == [("human", 1), ("wheat", 1)]
    assert out["pairs"]["multi vs single"]["spurious_more"] == [("korea", 1)]
