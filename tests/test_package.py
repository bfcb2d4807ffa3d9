"""A packaged pipeline installs into a fresh environment and pulls spacy-sru-ner
from a local wheel: ``spacy package`` (via scripts/package.py) on a tiny trained
pipeline, ``pip wheel`` of this repository, a new venv, ``pip install --no-index
--find-links``, then ``spacy.load(<package name>)`` in that venv.

The venv and the editable install: spacy-sru-ner is installed in editable mode in
the system site-packages. A venv created with ``--system-site-packages`` would see
that distribution, so pip would report the model's ``spacy-sru-ner`` requirement
as "already satisfied" (and never take it from --find-links), and imports could
reach the editable checkout through its ``.pth`` finder. So the venv is created
*without* system site-packages and gets a view of them instead: a folder of
symlinks to every entry of the system site-packages except the spacy-sru-ner
ones (its dist-info, its ``__editable__*`` .pth/finder), added by a ``.pth`` file
with ``site.addsitedir`` (so spacy, torch, ... come from the system, offline, and
their own .pth files still run). pip runs with no config file
(``PIP_CONFIG_FILE=/dev/null``) so only the given --find-links folder is used.
"""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import srsly

from conftest import nested_docs, train_nlp

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_NAME = "sru_ner_pkgtest"
OWN = "spacy_sru_ner"


def _run(cmd, **kwargs) -> str:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-5000:]}"
    return proc.stdout


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "PYTHONPATH"}
    env.update({"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "OMP_NUM_THREADS": "1",
                "PYTHONNOUSERSITE": "1"})
    env.update(extra)
    return env


def _copy_source(dest: Path) -> Path:
    """The files ``pip wheel`` needs from the repository (no build/ litter in the repo)."""
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "setup.cfg", "setup.py", "README.md", "MANIFEST.in", "LICENSE"):
        if (ROOT / name).is_file():
            shutil.copy(ROOT / name, dest / name)
    shutil.copytree(ROOT / OWN, dest / OWN, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def _system_view(dest: Path) -> Path:
    """Symlinks to the system site-packages entries, minus spacy-sru-ner's."""
    system = Path(sysconfig.get_paths()["purelib"])
    dest.mkdir(parents=True)
    for entry in system.iterdir():
        if OWN in entry.name.replace("-", "_").lower():
            continue
        (dest / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return dest


def _nested(spans):
    return any(a != b and a[0] <= b[0] and b[1] <= a[1] for a in spans for b in spans)


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    """A small sru_ner pipeline that has learnt a few nested sentences, saved to
    disk, with its evaluation JSON; and an abstract made of those sentences
    with the (nested) spans the pipeline finds in it."""
    from spacy.tokens import DocBin

    from spacy_sru_ner.evaluate import evaluate_corpora

    docs = nested_docs(6)
    nlp, examples, _ = train_nlp(docs, n_iter=200, target_f=0.9)
    folder = tmp_path_factory.mktemp("pipeline")
    path = folder / "model"
    nlp.to_disk(path)
    abstract = " ".join(doc.text for doc in docs)
    abstract_doc = nlp(abstract)
    expected = [(s.start, s.end, s.label_) for s in abstract_doc.spans["sru_ner"]]
    assert _nested(expected), f"the tiny pipeline finds no nested spans in the abstract: {expected}"
    (folder / "genia_demo").mkdir()
    DocBin(docs=docs, store_user_data=True).to_disk(folder / "genia_demo" / "test.spacy")
    metrics = folder / "metrics.json"
    srsly.write_json(metrics, evaluate_corpora(nlp, [folder / "genia_demo" / "test.spacy"]))
    return path, abstract, expected, metrics


def test_package_installs_with_own_wheel(tiny_pipeline, tmp_path):
    model, text, expected, metrics = tiny_pipeline
    # 1. spacy package (wheel) of the pipeline, with its model card
    command = "python -m spacy train demo.cfg --output model"
    out = _run([sys.executable, str(ROOT / "scripts" / "package.py"), str(model), str(tmp_path / "packages"),
                "--name", PACKAGE_NAME, "--version", "0.0.1", "--metrics", str(metrics), "--speed", "1234",
                "--command", command], cwd=tmp_path, env=_clean_env())
    assert "spacy-sru-ner" in out
    model_wheel = Path((tmp_path / "packages" / f"{PACKAGE_NAME}.wheel.txt").read_text().strip())
    with zipfile.ZipFile(model_wheel) as zf:
        meta = zf.read(next(n for n in zf.namelist() if n.endswith("METADATA"))).decode()
        readme = zf.read(next(n for n in zf.namelist() if n.endswith("/README.md"))).decode()
        card = json.loads(zf.read(next(n for n in zf.namelist() if n.endswith("/meta.json"))))
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert any("spacy-sru-ner" in r for r in requires), requires
    # the model card: labels, per-corpus and per-label test scores, speed, training command
    ((corpus, scores),) = srsly.read_json(metrics)["corpora"].items()
    assert f"| **{corpus}** | all | {100 * scores['p']:.1f} | {100 * scores['r']:.1f} |" in readme
    for label, prf in scores["per_type"].items():
        assert f"| {corpus} | {label} | {100 * prf['p']:.1f} |" in readme
        assert f"`{label}`" in readme
    assert "1,234 words/s" in readme and f"Trained with: `{command}`" in readme
    assert card["performance"][f"test_{corpus}_f"] == pytest.approx(scores["f"])
    assert not any(key.endswith("_loss") for key in card["performance"])
    assert card["author"] == "spacy-sru-ner" and card["license"]
    # 2. our own wheel, into the find-links folder
    links = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--wheel-dir", str(links), str(_copy_source(tmp_path / "src"))], cwd=tmp_path, env=_clean_env())
    own_wheels = list(links.glob("spacy_sru_ner-*.whl"))
    assert len(own_wheels) == 1
    # 3. a fresh venv that sees the system packages except spacy-sru-ner
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    venv_site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    view = _system_view(tmp_path / "system-site")
    (venv_site / "_system_site_view.pth").write_text(f"import site; site.addsitedir({str(view)!r})\n")
    probe = "import importlib.util, importlib.metadata as m\n" \
            "print(importlib.util.find_spec('spacy_sru_ner'), [d.metadata['Name'] for d in m.distributions() " \
            "if d.metadata['Name'].lower().replace('_', '-') == 'spacy-sru-ner'])"
    assert _run([str(python), "-c", probe], cwd=tmp_path, env=_clean_env()).strip() == "None []"
    # 4. install the model wheel: spacy-sru-ner must come from the find-links folder
    out = _run([str(python), "-m", "pip", "install", "--no-index", "--find-links", str(links), str(model_wheel)],
               cwd=tmp_path, env=_clean_env())
    assert own_wheels[0].name in out, out
    assert "Successfully installed" in out and "spacy-sru-ner-0" in out.replace("_", "-"), out
    # 5. load the installed package in the venv and predict
    code = (
        "import json, spacy, spacy_sru_ner\n"
        f"nlp = spacy.load('en_{PACKAGE_NAME}')\n"
        f"doc = nlp({text!r})\n"
        "print(json.dumps({'file': spacy_sru_ner.__file__, 'pipe': nlp.pipe_names, "
        "'spans': [[s.start, s.end, s.label_] for s in doc.spans['sru_ner']]}))\n"
    )
    result = json.loads(_run([str(python), "-c", code], cwd=tmp_path, env=_clean_env()).strip().splitlines()[-1])
    assert Path(result["file"]).resolve().is_relative_to(venv.resolve()), result["file"]
    assert result["pipe"] == ["sru_ner"]
    assert [tuple(s) for s in result["spans"]] == expected


def test_training_command_names_every_call_of_train_rounds(tmp_path):
    """The model card's training command joins every train-rounds call (a full-rate call, then a
    decayed one), falling back to the last command of older rounds.json files."""
    from conftest import project_script

    package = project_script("package")
    model = tmp_path / "run" / "model-best"
    model.mkdir(parents=True)
    calls = ["python -m spacy_sru_ner train-rounds c.cfg run --round-steps 2000 --patience 8000",
             "python -m spacy_sru_ner train-rounds c.cfg run --round-steps 1000 --patience 8000 --lr-scale 0.5"]
    (tmp_path / "run" / "rounds.json").write_text(json.dumps({"command": calls[1], "commands": calls}))
    assert package.training_command(model) == " && ".join(calls)
    (tmp_path / "run" / "rounds.json").write_text(json.dumps({"command": calls[1]}))
    assert package.training_command(model) == calls[1]
    # packaged at an earlier update: only the calls that trained the rounds up to it
    third = calls[1] + " --max-rounds 2"
    rounds = [{"round": i, "start_step": a, "end_step": b, "call": c}
              for i, (a, b, c) in enumerate([(0, 2000, 0), (2000, 3000, 1), (3000, 4000, 2), (4000, 5000, 2)])]
    (tmp_path / "run" / "rounds.json").write_text(json.dumps({"command": third, "commands": calls + [third], "rounds": rounds}))
    assert package.training_command(model, update=3000) == " && ".join(calls)
    assert package.training_command(model, update=2000) == calls[0]
    assert package.training_command(model, update=5000) == package.training_command(model) == " && ".join(calls + [third])


def test_model_card_lists_the_training_rounds(tmp_path):
    """The model card shows train-rounds' schedule: updates, learning-rate scale and best dev F per round."""
    from conftest import project_script

    package = project_script("package")
    model = tmp_path / "run" / "model-best"
    model.mkdir(parents=True)
    rounds = [
        {"round": 0, "start_step": 0, "end_step": 4000, "lr_scale": 1.0, "best_score": 0.689, "best_step": 4000},
        {"round": 1, "start_step": 4000, "end_step": 7000, "lr_scale": 0.5, "best_score": 0.742, "best_step": 6000},
    ]
    (tmp_path / "run" / "rounds.json").write_text(json.dumps({"command": "c", "rounds": rounds}))
    assert [(r["round"], r["end_step"], r["lr_scale"]) for r in package.training_rounds(model)] == [(0, 4000, 1.0), (1, 7000, 0.5)]
    card = package.model_card({"labels": {"sru_ner": ["Gene"]}}, None, None, "c", package.training_rounds(model))
    assert "| 0 | 0-4,000 | 1 | 68.9 (4,000) |" in card["description"]
    assert "| 1 | 4,000-7,000 | 0.5 | 74.2 (6,000) |" in card["description"]
    card = package.model_card({"labels": {}}, None, None, "c", package.training_rounds(model), None, 4000)
    assert "The packaged weights are those of update 4,000." in card["description"]
    assert "| 0 | 0-4,000 |" in card["description"] and "4,000-7,000" not in card["description"]
    assert package.training_rounds(tmp_path / "elsewhere" / "model-best") == []
    assert "schedule" not in package.model_card({"labels": {}}, None, None, None)["description"]


def test_model_card_of_a_copy_reads_its_rounds_folder(tmp_path):
    """A threshold-tuned copy of a train-rounds model gets the command and schedule of the folder it came from."""
    from conftest import project_script

    package = project_script("package")
    tuned = tmp_path / "tuned"
    tuned.mkdir()
    rounds = [{"round": 0, "start_step": 0, "end_step": 4000, "lr_scale": 1.0, "best_score": 0.75, "best_step": 4000}]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "rounds.json").write_text(json.dumps({"command": "c", "rounds": rounds}))
    assert package.training_rounds(tuned) == [] and package.training_command(tuned) is None
    assert package.training_rounds(tuned, tmp_path / "run") == rounds
    assert package.training_command(tuned, tmp_path / "run") == "c"


def test_model_card_states_the_decoding(tmp_path):
    """The card says how many labels a span may carry and which thresholds were picked on dev."""
    from conftest import project_script

    package = project_script("package")
    config = """[nlp]\nlang = "en"\npipeline = ["sru_ner"]\n\n[components]\n\n[components.sru_ner]\n
factory = "sru_ner"\nthreshold = 0.8\nmax_positive = null\n\n[components.sru_ner.label_thresholds]\n
Gene = 0.75\nSpecies = 0.25\n"""
    (tmp_path / "config.cfg").write_text(config)
    (tmp_path / "threshold.json").write_text(json.dumps({"data": ["corpus/bc2gm/dev.spacy"]}))
    (line,) = [text for text in package.decoding_lines(tmp_path) if text]
    assert line.startswith("Decoding (`sru_ner`): every label above its threshold per span")
    assert "Gene 0.75, Species 0.25 (0.8 for any other label)" in line
    assert "tuned on corpus/bc2gm/dev.spacy" in line
    (tmp_path / "threshold.json").unlink()
    (tmp_path / "config.cfg").write_text(config.replace("max_positive = null", "max_positive = 1").split("[components.sru_ner.label")[0])
    assert [text for text in package.decoding_lines(tmp_path) if text] == [
        "Decoding (`sru_ner`): at most one label per span; threshold 0.8."]
    card = package.model_card({"labels": {"sru_ner": ["Gene"]}}, None, None, None, None, package.decoding_lines(tmp_path))
    assert "at most one label per span" in card["description"]


def test_plain_labels_copy_and_its_model_card(tmp_path):
    """scripts/plain_labels.py saves a prefixed-label pipeline that writes the plain labels
    (cfg and config.cfg), keeps threshold.json, and the model card lists the labels it writes."""
    import spacy

    from conftest import SMALL_MODEL, project_script

    plain = project_script("plain_labels")
    package = project_script("package")
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL})
    for label in ("bc2gm$Gene", "jnlpba$Gene", "jnlpba$DNA"):
        pipe.add_label(label)
    nlp.initialize()
    model = tmp_path / "model"
    nlp.to_disk(model)
    srsly.write_json(model / "threshold.json", {"data": ["corpus/bc2gm/dev.spacy"]})
    assert plain.plain_labels(model, tmp_path / "plain") == ["DNA", "Gene"]
    copy = spacy.load(tmp_path / "plain")
    assert copy.get_pipe("sru_ner").cfg["strip_prefixes"] is True
    assert copy.config["components"]["sru_ner"]["strip_prefixes"] is True
    doc = copy.make_doc("IL-2 binds")
    copy.get_pipe("sru_ner").set_annotations([doc], [[(0, 1, "bc2gm$Gene", 0.7), (0, 1, "jnlpba$Gene", 0.9)]])
    assert [(s.start, s.end, s.label_) for s in doc.spans["sru_ner"]] == [(0, 1, "Gene")]
    assert (tmp_path / "plain" / "threshold.json").is_file()
    assert package.writes_plain_labels(tmp_path / "plain") and not package.writes_plain_labels(model)
    card = package.model_card(
        srsly.read_json(tmp_path / "plain" / "meta.json"), None, None, None, None,
        package.decoding_lines(tmp_path / "plain"), None, package.writes_plain_labels(tmp_path / "plain"),
    )["description"]
    assert "Labels: `DNA`, `Gene`." in card and "written without the prefix (`strip_prefixes`" in card
    metrics = {"corpora": {}, "macro": {"p": 0.5, "r": 0.5, "f": 0.5}}
    assert "(plain labels:" in package.model_card({}, metrics, None, None, plain_labels=True)["description"]
    assert "(plain labels:" not in package.model_card({}, metrics, None, None)["description"]
    with pytest.raises(SystemExit, match="expected one sru_ner component named 'ner'"):
        plain.plain_labels(model, tmp_path / "x", component="ner")
