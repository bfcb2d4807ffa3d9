"""Save a copy of a pipeline whose ``sru_ner`` component was trained with
corpus-prefixed labels (``bc2gm$Gene``, ``jnlpba$Gene``) that writes the plain
labels (``Gene``; of overlapping spans of both, the higher-scored): the
component's ``strip_prefixes = true``, in its cfg and in the saved config.

    python scripts/plain_labels.py MODEL OUTPUT [--component sru_ner]

A ``threshold.json`` beside MODEL (``tune-threshold``) is copied along, so that
the copy's model card still says where its thresholds came from. Evaluating the
copy scores the plain gold labels (``evaluate``), as ``evaluate --strip-prefixes``
does for MODEL.
"""
import argparse
import shutil
from pathlib import Path
from typing import List, Optional


def plain_labels(model: Path, output: Path, component: Optional[str] = None) -> List[str]:
    """Write the copy; returns the plain labels it writes."""
    import spacy

    from spacy_sru_ner.contract import strip_prefix

    nlp = spacy.load(model)
    names = [name for name in nlp.pipe_names if nlp.get_pipe_meta(name).factory == "sru_ner"]
    if component is not None:
        names = [name for name in names if name == component]
    if len(names) != 1:
        raise SystemExit(f"✘ {model}: expected one sru_ner component{f' named {component!r}' if component else ''}, "
                         f"found {names}")
    name = names[0]
    pipe = nlp.get_pipe(name)
    labels = sorted({strip_prefix(label) for label in pipe.labels})
    if labels == sorted(pipe.labels):
        print(f"⚠ {model}: the labels of '{name}' have no corpus prefix; the copy writes them unchanged")
    pipe.cfg["strip_prefixes"] = True
    nlp.get_pipe_config(name)["strip_prefixes"] = True
    nlp.to_disk(output)
    if (model / "threshold.json").is_file():
        shutil.copy(model / "threshold.json", output / "threshold.json")
    print(f"✔ {output}: '{name}' writes {', '.join(labels)}")
    return labels


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a pipeline folder")
    parser.add_argument("output", type=Path, help="where the copy goes")
    parser.add_argument("--component", default=None, help="the sru_ner component's name, where there are several")
    args = parser.parse_args(argv)
    plain_labels(args.model, args.output, args.component)


if __name__ == "__main__":
    main()
