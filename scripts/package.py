"""Package a trained pipeline as an installable wheel (``spacy package``).

    python scripts/package.py MODEL OUTPUT_DIR --name sru_ner_biomed --version 0.1.0 \
        [--metrics metrics/multi.json] [--speed 9800] [--command "weasel run train-multi-rounds"] \
        [--rounds training/rounds_avg/multi_all]

Model card: the package's meta.json (and the README.md that ``spacy package``
writes from it) gets a description with the labels, the test scores per corpus
and per label from ``--metrics`` (the JSON of ``python -m spacy_sru_ner
evaluate``), the corpora with their sources and licences, the speed, and the
command that trained the model (``--command``, else the one recorded next to
the model by ``train-rounds`` or ``scripts/train.py``, or in ``--rounds`` for a
copy of a train-rounds model such as a threshold-tuned one), with its schedule,
and the decoding settings (thresholds per label, labels per span).

MODEL is a pipeline folder, or a training output folder (its model-best, else
model-last is used). Writes OUTPUT_DIR/en_<name>-<version>/ and the wheel in its
dist/ folder, and prints the wheel path (also written to OUTPUT_DIR/<name>.wheel.txt).

Requirements: ``spacy package`` puts into the package's requirements every
third-party distribution that provides a registered function used in the
pipeline's [nlp]/[components] config; it finds them through the registries'
entry points (``spacy_factories``: ``sru_ner = spacy_sru_ner.pipe:...``) and
``importlib.metadata.packages_distributions()``, so ``spacy-sru-ner>=0.1.0,<0.2.0``
(and ``spacy-transformers`` for a transformer pipeline) is found automatically.
This script checks that it was, adds it to the meta if not, and checks the
wheel's ``Requires-Dist``.

The wheel is built by ``spacy package --build wheel`` when the ``build`` or
``wheel`` package is installed (``python -m build`` needs network access for its
isolated build environment; without it spaCy falls back to ``setup.py bdist_wheel``).
Otherwise the package folder is built with ``pip wheel --no-deps
--no-build-isolation`` (offline, setuptools only).
"""
import argparse
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from project_corpora import SOURCES

OWN_DIST = "spacy-sru-ner"


def resolve_model(path: Path) -> Path:
    if (path / "config.cfg").is_file():
        return path
    for name in ("model-best", "model-last"):
        if (path / name / "config.cfg").is_file():
            return path / name
    raise SystemExit(f"✘ no pipeline found at {path} (nor in its model-best/model-last): train it first")


def requirement_names(requirements: List[str]) -> List[str]:
    return [re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].strip().lower().replace("_", "-") for r in requirements]


def wheel_requirements(wheel: Path) -> List[str]:
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode("utf8")
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]


def _record_folders(model: Path, rounds: Optional[Path] = None) -> List[Path]:
    """Where a model's training record lies: ``rounds`` (a train-rounds folder, for
    a copy of its model such as a threshold-tuned one), else next to the model."""
    return [rounds] if rounds is not None else [model.parent, model.parent.parent]


def training_command(model: Path, rounds: Optional[Path] = None, update: Optional[int] = None) -> Optional[str]:
    """The command recorded next to a trained model (train-rounds' rounds.json,
    scripts/train.py's project_model.json), or in ``rounds``, if any. With
    ``update`` (the packaged weights' update), a train-rounds record names only
    the calls that trained rounds up to it (where its rounds say which call ran
    them)."""
    import srsly

    for folder in _record_folders(model, rounds):
        rounds = folder / "rounds.json"
        state = srsly.read_json(rounds) if rounds.is_file() else {}
        calls = list(state.get("commands") or [])
        ran = state.get("rounds") or []
        if calls and update is not None and ran and all("call" in r for r in ran):
            used = sorted({r["call"] for r in ran if r["start_step"] < update})
            calls = [calls[i] for i in used if i < len(calls)] or calls
        command = " && ".join(calls) or state.get("command")
        if command:
            return command
        info = folder / "project_model.json"
        if info.is_file():
            data = srsly.read_json(info)
            overrides = " ".join(f"--{k} {v}" for k, v in data.get("overrides", {}).items())
            return f"python -m spacy train {data['config']} --output {folder} {overrides}".strip()
    return None


def training_rounds(model: Path, rounds: Optional[Path] = None) -> List[Dict[str, Any]]:
    """The rounds train-rounds recorded next to a trained model (rounds.json), or in ``rounds``, if any."""
    import srsly

    for folder in _record_folders(model, rounds):
        if (folder / "rounds.json").is_file():
            return list(srsly.read_json(folder / "rounds.json").get("rounds", []))
    return []


def schedule_lines(rounds: List[Dict[str, Any]], update: Optional[int] = None) -> List[str]:
    """The model card's training schedule: one row per train-rounds round (with
    ``update``, the packaged weights' update: only the rounds up to it)."""
    if update is not None:
        rounds = [r for r in rounds if r["start_step"] < update]
    if not rounds:
        return []
    where = f" The packaged weights are those of update {update:,}." if update is not None else ""
    lines = ["", f"Training schedule (`train-rounds`; each round continues from the last saved pipeline).{where}", "",
             "| round | updates | learning rate (× the config's) | best dev F (at update) |", "|---|---|---|---|"]
    for r in rounds:
        best = f"{100 * r['best_score']:.1f} ({r['best_step']:,})" if r.get("best_score") is not None else ""
        lines.append(f"| {r['round']} | {r['start_step']:,}-{r['end_step']:,} | {r.get('lr_scale', 1.0):g} | {best} |")
    return lines


def decoding_lines(model: Path) -> List[str]:
    """The model card's decoding settings of the sru_ner component: its threshold
    (per label where ``tune-threshold --per-label`` picked them on dev) and how many
    labels a span may carry."""
    import srsly
    from spacy.util import load_config

    config = load_config(model / "config.cfg", interpolate=False)
    lines: List[str] = []
    for name, component in config["components"].items():
        if component.get("factory") != "sru_ner":
            continue
        limit = component.get("max_positive")
        thresholds = dict(component.get("label_thresholds") or {})
        tuned = model / "threshold.json"
        if limit in (None, 0):
            per_span = "every label above its threshold" if thresholds else "every label above the threshold"
        else:
            per_span = "at most one label" if limit == 1 else f"at most {limit} labels"
        line = f"Decoding (`{name}`): {per_span} per span"
        picked = " picked on the dev sets by `tune-threshold`" if tuned.is_file() else ""
        if thresholds:
            values = ", ".join(f"{label} {value:g}" for label, value in sorted(thresholds.items()))
            line += f"; thresholds{picked}: {values} ({component.get('threshold')} for any other label)"
        else:
            line += f"; threshold {component.get('threshold')}{picked}"
        if tuned.is_file():
            line += f"; tuned on {', '.join(srsly.read_json(tuned).get('data', []))}"
        if component.get("strip_prefixes"):
            line += ("; trained with corpus-prefixed labels (`bc2gm$Gene`, `jnlpba$Gene`), written without the "
                     "prefix (`strip_prefixes`: where both fire on overlapping words, one `Gene` span, the "
                     "higher-scored)")
        lines += ["", line + "."]
    return lines


def writes_plain_labels(model: Path) -> bool:
    """Whether an sru_ner component of ``model`` strips corpus prefixes from its labels."""
    from spacy.util import load_config

    components = load_config(model / "config.cfg", interpolate=False)["components"].values()
    return any(c.get("factory") == "sru_ner" and c.get("strip_prefixes") for c in components)


def model_card(
    meta: Dict[str, Any],
    metrics: Optional[Dict[str, Any]],
    speed: Optional[float],
    command: Optional[str],
    rounds: Optional[List[Dict[str, Any]]] = None,
    decoding: Optional[List[str]] = None,
    update: Optional[int] = None,
    plain_labels: bool = False,
) -> Dict[str, Any]:
    """``meta`` with the model card: description, sources, licence, performance.
    plain_labels: the model writes its labels without corpus prefixes
    (``strip_prefixes``), so the card lists them that way."""
    from spacy_sru_ner.contract import strip_prefix

    meta = dict(meta)
    labels = sorted({label for pipe_labels in meta.get("labels", {}).values() for label in pipe_labels})
    if plain_labels:
        labels = sorted({strip_prefix(label) for label in labels})
    lines = [
        "Nested, multi-corpus biomedical NER with SRU-NER (spacy-sru-ner): "
        "`doc.spans[\"sru_ner\"]` gets every mention, nested and overlapping ones included, with a score "
        "(`doc.spans[\"sru_ner\"].attrs[\"scores\"]`).",
        "",
        f"Labels: {', '.join(f'`{label}`' for label in labels)}.",
    ]
    sources: List[Dict[str, str]] = []
    licences: List[str] = []
    performance: Dict[str, Any] = {}
    if metrics:
        scored = "each corpus scored on the labels it annotates"
        if plain_labels:
            scored += " (plain labels: a BC2GM gene that the JNLPBA-trained `Gene` finds counts)"
        lines += ["", f"Test scores (`python -m spacy_sru_ner evaluate`; {scored}):",
                  "", "| corpus | label | P | R | F | gold mentions |", "|---|---|---|---|---|---|"]
        for corpus, result in metrics["corpora"].items():
            for label, prf in result["per_type"].items():
                lines.append(f"| {corpus} | {label} | {100 * prf['p']:.1f} | {100 * prf['r']:.1f} | "
                             f"{100 * prf['f']:.1f} | {prf['gold']} |")
            lines.append(f"| **{corpus}** | all | {100 * result['p']:.1f} | {100 * result['r']:.1f} | "
                         f"**{100 * result['f']:.1f}** | {result['gold']} |")
            performance[f"test_{corpus}_f"] = result["f"]
            title, url, licence = SOURCES.get(corpus.split(":")[0], (corpus, "", "see the corpus"))
            source = {"name": f"{title} ({licence})"}
            if url:
                source["url"] = url
            if source not in sources:
                sources.append(source)
            licences.extend(part for part in licence.split("; ") if part not in licences)
        macro = metrics["macro"]
        lines.append(f"| macro | | {100 * macro['p']:.1f} | {100 * macro['r']:.1f} | {100 * macro['f']:.1f} | |")
        performance.update(test_macro_p=macro["p"], test_macro_r=macro["r"], test_macro_f=macro["f"])
    if speed is not None:
        lines += ["", f"Speed: {speed:,.0f} words/s on one CPU thread."]
        performance["speed"] = speed
    lines += decoding or []
    if command:
        lines += ["", f"Trained with: `{command}`"]
    lines += schedule_lines(rounds or [], update)
    meta["description"] = "\n".join(lines)
    if sources:
        meta["sources"] = sources
        meta["license"] = "; ".join(licences)  # the corpora's: the model is derived from them
    if not meta.get("author"):
        meta["author"] = "spacy-sru-ner"
    if performance:
        # spacy train's scores are dev scores of the checkpoint (before any threshold tuning) and the
        # loss: keep the scores, marked as dev, beside the test scores of the model card
        dev = {
            f"dev_{key}": value for key, value in meta.get("performance", {}).items()
            if not key.endswith("_loss") and not key.startswith(("dev_", "test_")) and key != "speed"
        }
        meta["performance"] = {**dev, **performance}
    return meta


def package_model(
    model: Path,
    output_dir: Path,
    name: str,
    version: str,
    *,
    metrics: Optional[Path] = None,
    speed: Optional[float] = None,
    command: Optional[str] = None,
    rounds: Optional[Path] = None,
    update: Optional[int] = None,
) -> Path:
    import spacy_sru_ner
    import srsly
    from spacy import util
    from spacy.cli.package import get_meta, has_build, has_wheel, package

    model = resolve_model(model)
    output_dir.mkdir(parents=True, exist_ok=True)
    meta = srsly.read_json(model / "meta.json")
    detected = get_meta(model, dict(meta))["requirements"]
    if OWN_DIST in requirement_names(detected):
        print(f"ℹ spacy package detects the requirements: {', '.join(detected)}")
    else:
        own = f"{OWN_DIST}{util.get_minor_version_range(spacy_sru_ner.__version__)}"
        print(f"⚠ spacy package did not detect {OWN_DIST} (detected: {detected}); adding {own} to the meta")
        meta["requirements"] = list(meta.get("requirements", [])) + [own]
    meta = model_card(meta, srsly.read_json(metrics) if metrics else None, speed,
                      command or training_command(model, rounds, update), training_rounds(model, rounds), decoding_lines(model),
                      update, writes_plain_labels(model))
    meta_path = output_dir / f"{name}.meta.json"
    srsly.write_json(meta_path, meta)
    lang = meta.get("lang", "en")
    package_name = name if name.startswith(f"{lang}_") else f"{lang}_{name}"
    main_path = output_dir / f"{package_name}-{version}"
    if main_path.exists():
        shutil.rmtree(main_path)  # also old dist/ files, which spacy package --force keeps
    use_spacy_build = has_wheel() or has_build()
    package(
        model, output_dir, meta_path=meta_path, name=name, version=version,
        create_meta=False, create_sdist=False, create_wheel=use_spacy_build, force=True, silent=False,
        require_parent=True,  # as the spacy package CLI: spacy itself is a requirement
    )
    dist = main_path / "dist"
    if not use_spacy_build:
        print("ℹ neither 'build' nor 'wheel' is installed: building the wheel with pip (offline)")
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
             "--wheel-dir", str(dist), str(main_path)],
            check=True,
        )
    wheels = sorted(dist.glob("*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"✘ expected one wheel in {dist}, found {[w.name for w in wheels]}")
    wheel = wheels[0]
    requires = wheel_requirements(wheel)
    if OWN_DIST not in requirement_names(requires):
        raise SystemExit(f"✘ {wheel.name} does not require {OWN_DIST}: Requires-Dist {requires}")
    print(f"✔ {wheel} (Requires-Dist: {', '.join(requires)})")
    (output_dir / f"{name}.wheel.txt").write_text(str(wheel.resolve()) + "\n", encoding="utf8")
    return wheel


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="pipeline folder or training output folder")
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--name", default="sru_ner_biomed", help="package name (spaCy prefixes the language)")
    parser.add_argument("--version", default="0.1.0")
    parser.add_argument("--metrics", type=Path, help="test scores for the model card (spacy_sru_ner evaluate JSON)")
    parser.add_argument("--speed", type=float, help="words per second for the model card")
    parser.add_argument("--command", help="the training command for the model card")
    parser.add_argument("--rounds", type=Path, help="the train-rounds folder MODEL was copied from (a threshold-tuned "
                        "copy): its rounds.json gives the card's training command and schedule")
    parser.add_argument("--update", type=int, help="the update whose weights MODEL holds, when it is not the last of "
                        "its rounds (the card's schedule stops at it; 0: the last)")
    args = parser.parse_args(argv)
    package_model(args.model, args.output_dir, args.name, args.version, metrics=args.metrics, speed=args.speed,
                  command=args.command, rounds=args.rounds, update=args.update or None)


if __name__ == "__main__":
    main()
