"""`python -m spacy_sru_ner demo`: train on the bundled GENIA sample and show nested spans."""
from pathlib import Path
from typing import Dict, List, Optional

from wasabi import msg

from . import DEMO_CONFIG, DEMO_DEV, DEMO_TRAIN

EXAMPLES = [
    "Activation of the CD28 surface receptor provides a major costimulatory signal for T cell activation.",
    "IL-2 gene expression requires NF-kappa B activation in human peripheral blood T lymphocytes.",
    "The human T-cell leukemia virus type I Tax protein binds the IL-2 receptor alpha promoter.",
]


def run_demo(output_dir: Path, max_steps: int = 600, overrides: Optional[Dict[str, object]] = None) -> Dict:
    """Convert the sample, ``spacy train`` the demo config, print predictions.

    Returns the dev scores of the best model.
    """
    import spacy
    from spacy import displacy
    from spacy.cli.train import train

    from ..convert import convert_file, print_stats

    output_dir = Path(output_dir)
    corpus_dir = output_dir / "corpus"
    for name, source in (("train", DEMO_TRAIN), ("dev", DEMO_DEV)):
        stats = convert_file(source, corpus_dir / f"{name}.spacy", "genia", corpus_name="genia-demo")
        msg.info(f"Demo {name} split")
        print_stats(stats)
    config_overrides = {
        "paths.train": str(corpus_dir / "train.spacy"),
        "paths.dev": str(corpus_dir / "dev.spacy"),
        "training.max_steps": max_steps,
        **(overrides or {}),
    }
    train(DEMO_CONFIG, output_dir / "model", overrides=config_overrides)
    nlp = spacy.load(output_dir / "model" / "model-best")
    scores = nlp.meta.get("performance", {})
    msg.divider("Predictions (nested spans in doc.spans['sru_ner'])")
    docs = list(nlp.pipe(EXAMPLES))
    for doc in docs:
        print(doc.text)
        group = doc.spans["sru_ner"]
        for span, score in zip(group, group.attrs["scores"]):
            print(f"  [{span.start:>2}, {span.end:>2})  {span.label_:<10} {score:.2f}  {span.text}")
        if not len(group):
            print("  (no entities)")
    html = displacy.render(docs, style="span", options={"spans_key": "sru_ner"}, page=True)
    (output_dir / "predictions.html").write_text(html, encoding="utf8")
    msg.divider("Dev scores (exact match)")
    rows: List = [("micro", scores.get("spans_sru_ner_p"), scores.get("spans_sru_ner_r"), scores.get("spans_sru_ner_f"))]
    for label, prf in sorted((scores.get("spans_sru_ner_per_type") or {}).items()):
        rows.append((label, prf["p"], prf["r"], prf["f"]))
    msg.table([(name, *(f"{100 * v:.1f}" if v is not None else "-" for v in vals)) for name, *vals in rows],
              header=("", "P", "R", "F"))
    msg.good(f"Model: {output_dir / 'model' / 'model-best'}; displaCy page: {output_dir / 'predictions.html'}")
    return scores
