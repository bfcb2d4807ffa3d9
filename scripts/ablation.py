"""Steps of the single vs multi-corpus ablation (project.yml: ablation-multi,
ablation-multi-long) that are neither ``spacy train`` nor an evaluation.

    python scripts/ablation.py max-positive MODEL OUTPUT
    python scripts/ablation.py table OUT_DIR [--output OUT_DIR/summary.md]
    python scripts/ablation.py split CORPUS.spacy OUT_DIR [--dev-fraction 0.2]
    python scripts/ablation.py bilstm-config CONFIG OUTPUT --component NAME [--depth 2] [--dropout 0.0]

* max-positive: MODEL (a trained sru_ner pipeline) saved to OUTPUT with the
  component's ``max_positive = 1`` (at most one label per span, the most
  probable), to be evaluated as the model ``<name>_maxpos1``; ``--value none``
  (every label above the threshold) or another number instead.
* table: the markdown table of test P / R / F per corpus of every model under
  OUT_DIR with an evaluation in ``OUT_DIR/eval/<name>.json`` (``python -m
  spacy_sru_ner evaluate``), its training seconds and updates; printed and
  written to --output. A corpus whose label the model does not predict is "–".
  Training seconds: ``<name>/train_seconds.txt`` where an earlier run wrote it
  (wall time of ``spacy train``), else the last record of ``<name>/curve.jsonl``
  (``spacy_sru_ner.CurveLogger.v1``: training seconds without the evaluations);
  updates: ``<name>/steps.txt``, else ``[training] max_steps`` of the model's config.
* split: CORPUS's docs cut in two in their order (the last --dev-fraction of
  them, whole abstracts stay mostly together) into OUT_DIR/train.spacy and
  OUT_DIR/dev.spacy, with the counts of each part: docs, mentions and mentions
  nested in a mention of their own label (e.g. GENIA's fully nested dev split
  as training data, since its train split lacks those mentions).
* bilstm-config: CONFIG written to OUTPUT with the tok2vec encoder of component
  NAME (``[components.NAME.model.tok2vec.encode]``) replaced by spaCy's
  ``spacy.TorchBiLSTMEncoder.v1`` of the same width (--depth layers, --dropout),
  everything else unchanged: a config override cannot swap an architecture,
  since the two take different settings.
"""
import argparse
import json
from pathlib import Path
from typing import List, Optional, Tuple

# (folder under OUT_DIR, row title), in table order; "<name>_maxpos1" rows follow for the merged models
MODELS: List[Tuple[str, str]] = [
    ("single_bc5cdr_chem", "single BC5CDR-chem"),
    ("single_bc5cdr_disease", "single BC5CDR-disease"),
    ("single_linnaeus", "single linnaeus"),
    ("multi_masked", "multi, masking = true"),
    ("multi_unmasked", "multi, masking = false"),
    ("multi_masked_v0", "multi, masking = true, loss before issue 9"),
    ("multi_shift_bar", "multi, masking = true, shift_bar = 0.5"),
    ("multi_mentions", "multi, masking = true, mention_fraction = 0.5"),
    ("multi_mentions_shift_bar", "multi, masking = true, mention_fraction = 0.5, shift_bar = 0.5"),
    ("multi_mentions_shift_bar_pw5", "multi, masking = true, mention_fraction = 0.5, shift_bar = 0.5, positive_weight = 5"),
    ("multi_mentions25_shift_bar", "multi, masking = true, mention_fraction = 0.25, shift_bar = 0.5"),
    ("multi_mentions_shift_bar_disjoint",
     "multi, masking = true, mention_fraction = 0.5, shift_bar = 0.5, disjoint_labels = Chemical, Disease, Species"),
]
MAXPOS_SUFFIX = "_maxpos1"
CORPORA = [
    ("bc5cdr_chem", "BC5CDR-chem (Chemical)"),
    ("bc5cdr_disease", "BC5CDR-disease (Disease)"),
    ("linnaeus", "linnaeus (Species)"),
]


def set_max_positive(model: Path, output: Path, value: Optional[int] = 1) -> None:
    """Save ``model`` to ``output`` with the sru_ner component's max_positive =
    ``value`` (None: every label above the threshold)."""
    import spacy

    from spacy_sru_ner.evaluate import set_max_positive as set_component_max_positive

    nlp = spacy.load(model)
    set_component_max_positive(nlp, value or 0)
    nlp.to_disk(output)
    print(f"✔ {model} with max_positive = {value}: {output}")


def _max_positive_value(text: str) -> Optional[int]:
    if text.lower() in ("none", "null"):
        return None
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"max_positive must be 'none' or >= 1, got {text}")
    return value


def _pipeline(out: Path, key: str) -> Path:
    """The pipeline folder of a table row: <key>/model-last, or <key> itself (max_positive copies)."""
    model_last = out / key / "model-last"
    return model_last if model_last.exists() else out / key


def train_seconds(run: Path) -> str:
    seconds = run / "train_seconds.txt"
    if seconds.exists():
        return seconds.read_text(encoding="utf8").strip()
    curve = run / "curve.jsonl"
    if curve.exists():
        lines = [line for line in curve.read_text(encoding="utf8").splitlines() if line.strip()]
        if lines:
            return f"{json.loads(lines[-1])['train_seconds']:.0f}"
    return "?"


def train_steps(run: Path) -> str:
    steps = run / "steps.txt"
    if steps.exists():
        return steps.read_text(encoding="utf8").strip()
    config = run / "model-last" / "config.cfg"
    if config.exists():
        from spacy.util import load_config

        return str(load_config(config, interpolate=False)["training"]["max_steps"])
    return "?"


def table(out: Path) -> str:
    models = MODELS + [(key + MAXPOS_SUFFIX, title + ", max_positive = 1") for key, title in MODELS if key.startswith("multi")]
    lines = [
        "| model | " + " | ".join(f"{title} P / R / F" for _, title in CORPORA) + " | train s | steps |",
        "|" + "---|" * (len(CORPORA) + 3),
    ]
    for key, title in models:
        res_path = out / "eval" / f"{key}.json"
        if not res_path.exists():  # a variant this run did not train
            continue
        res = json.loads(res_path.read_text(encoding="utf8"))
        meta = json.loads((_pipeline(out, key) / "meta.json").read_text(encoding="utf8"))
        labels = set(meta.get("labels", {}).get("sru_ner", []))
        cells = []
        for name, _ in CORPORA:
            scores = res["corpora"][name]
            if not labels & set(scores["labels"]):
                cells.append("–")  # the model does not predict this corpus's label
            else:
                cells.append(f"{100 * scores['p']:.1f} / {100 * scores['r']:.1f} / {100 * scores['f']:.1f}")
        trained = out / key.removesuffix(MAXPOS_SUFFIX)  # the same trained model, decoded with max_positive = 1
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {train_seconds(trained)} | {train_steps(trained)} |")
    return "\n".join(lines) + "\n"


def split_corpus(corpus: Path, out_dir: Path, dev_fraction: float = 0.2) -> dict:
    """Write CORPUS's first docs to OUT_DIR/train.spacy, its last
    ``dev_fraction`` to OUT_DIR/dev.spacy; return and print their counts."""
    import spacy
    from spacy.tokens import DocBin

    from spacy_sru_ner.confusion import nesting_kind
    from spacy_sru_ner.contract import DEFAULT_SPANS_KEY, gold_spans

    if not 0.0 < dev_fraction < 1.0:
        raise ValueError(f"--dev-fraction must lie strictly between 0 and 1, got {dev_fraction}.")
    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(corpus).get_docs(nlp.vocab))
    n_dev = int(round(len(docs) * dev_fraction))
    if n_dev == 0 or n_dev == len(docs):
        raise ValueError(f"{corpus}: {len(docs)} docs cannot be split with --dev-fraction {dev_fraction}.")
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, part in (("train", docs[: len(docs) - n_dev]), ("dev", docs[len(docs) - n_dev :])):
        DocBin(store_user_data=True, docs=part).to_disk(out_dir / f"{name}.spacy")
        mentions = same_label = 0
        for doc in part:
            spans = [(s.start, s.end, s.label_) for s in gold_spans(doc, DEFAULT_SPANS_KEY)]
            mentions += len(set(spans))
            same_label += sum(nesting_kind(m, spans) == "inner_same_label" for m in set(spans))
        counts[name] = {"docs": len(part), "mentions": mentions, "inner_same_label": same_label}
        print(f"✔ {out_dir / f'{name}.spacy'}: {len(part)} docs, {mentions} mentions, {same_label} inside a mention of their own label")
    return counts


def bilstm_config(
    config: Path, output: Path, component: str, depth: int = 2, dropout: float = 0.0, lexicon: bool = False
) -> None:
    """Write ``config`` to ``output`` with ``component``'s tok2vec encoder
    replaced by a BiLSTM (``spacy.TorchBiLSTMEncoder.v1``) of the same width;
    with ``lexicon``, also initialize the component with the mention lexicon
    of the training corpora (``spacy_sru_ner.mention_lexicon.v1``)."""
    from spacy.util import load_config

    cfg = load_config(config, interpolate=False)
    try:
        encode = cfg["components"][component]["model"]["tok2vec"]["encode"]
    except KeyError:
        raise SystemExit(f"{config}: no [components.{component}.model.tok2vec.encode] section to replace.") from None
    if depth < 1:
        raise SystemExit(f"--depth must be at least 1, got {depth}.")
    cfg["components"][component]["model"]["tok2vec"]["encode"] = {
        "@architectures": "spacy.TorchBiLSTMEncoder.v1",
        "width": encode["width"],
        "depth": depth,
        "dropout": dropout,
    }
    if lexicon:
        settings = cfg["initialize"]["components"].setdefault(component, {})
        settings["lexicon"] = {"@misc": "spacy_sru_ner.mention_lexicon.v1", "corpora": "${corpora.train}"}
    output.parent.mkdir(parents=True, exist_ok=True)
    cfg.to_disk(output)
    extra = " and the training corpora's mention lexicon" if lexicon else ""
    print(f"✔ {config} with a {depth}-layer BiLSTM encoder (width {encode['width']}) for {component}{extra}: {output}")


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    max_positive = commands.add_parser("max-positive", help="save MODEL with max_positive = 1 (--value) to OUTPUT")
    max_positive.add_argument("model", type=Path)
    max_positive.add_argument("output", type=Path)
    max_positive.add_argument("--value", type=_max_positive_value, default=1, help="a number >= 1, or 'none'")
    summary = commands.add_parser("table", help="markdown table of the evaluations under OUT_DIR")
    summary.add_argument("out_dir", type=Path)
    summary.add_argument("--output", type=Path, default=None, help="also write the table here")
    split = commands.add_parser("split", help="cut CORPUS.spacy into OUT_DIR/train.spacy and OUT_DIR/dev.spacy")
    split.add_argument("corpus", type=Path)
    split.add_argument("out_dir", type=Path)
    split.add_argument("--dev-fraction", type=float, default=0.2)
    bilstm = commands.add_parser("bilstm-config", help="write CONFIG with a BiLSTM tok2vec encoder to OUTPUT")
    bilstm.add_argument("config", type=Path)
    bilstm.add_argument("output", type=Path)
    bilstm.add_argument("--component", required=True, help="the component whose tok2vec encoder is replaced")
    bilstm.add_argument("--depth", type=int, default=2)
    bilstm.add_argument("--dropout", type=float, default=0.0)
    bilstm.add_argument("--lexicon", action="store_true", help="initialize it with the corpora's mention lexicon")
    args = parser.parse_args(argv)
    if args.command == "bilstm-config":
        bilstm_config(args.config, args.output, args.component, args.depth, args.dropout, args.lexicon)
        return
    if args.command == "max-positive":
        set_max_positive(args.model, args.output, args.value)
        return
    if args.command == "split":
        split_corpus(args.corpus, args.out_dir, args.dev_fraction)
        return
    text = table(args.out_dir)
    print(text, end="")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf8")
        print(f"✔ Saved {args.output}")


if __name__ == "__main__":
    main()
