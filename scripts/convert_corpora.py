"""Convert every corpus found under SRC into ``OUT/<corpus>/{train,dev,test}.spacy``.

    python scripts/convert_corpora.py assets/corpora corpus [--limit N] [--corpora all]

Flat corpora (BC5CDR, BC5CDR-chem/-disease, BC4CHEMD, BC2GM, JNLPBA, linnaeus,
NCBI-disease, CoNLL-2003) go through the ``iob``/``conll`` converters; GENIA gives
two nested corpora: ``genia_fm`` (Finkel & Manning / Ju et al. split: train from
the layered ``genia.train.iob2`` if present, else the per-type MLC files; dev/test
from the full nested ``genia.{dev,test}.iob2``) and ``genia_yan`` (Yan et al.
2022 jsonlines, usually dev/test only). A corpus or split whose files are absent
is skipped with a message. Every doc records its corpus name and the full label
set its corpus annotates (also when --limit keeps only a few sentences).
Writes ``OUT/manifest.json`` (what was converted, from which files).
"""
import argparse
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from project_corpora import FLAT_CORPORA, GENIA_TYPES, NESTED_CORPORA, SPLITS
from project_corpora import flat_split_file, nested_source, parse_names


def _convert(inputs: List[Path], output: Path, fmt: str, name: str, labels, limit: Optional[int]) -> Dict[str, Any]:
    from spacy_sru_ner.convert import convert_file, print_stats

    stats = convert_file(
        [str(p) for p in inputs], output, fmt, corpus_name=name, labels=list(labels), limit=limit
    )
    print_stats(stats)
    return {
        "file": str(output),
        "inputs": [str(p) for p in inputs],
        "format": fmt,
        "docs": stats.read.docs,
        "mentions": stats.read.mentions,
        "per_label": dict(sorted(stats.read.entities.items())),
        "labels": stats.labels,
    }


def convert_all(src: Path, out: Path, *, limit: Optional[int] = None, corpora: Optional[str] = None) -> Dict[str, Any]:
    """Convert what is found; returns (and writes) the manifest."""
    names = parse_names(corpora, list(FLAT_CORPORA) + list(NESTED_CORPORA))
    unknown = [n for n in names if n not in FLAT_CORPORA and n not in NESTED_CORPORA]
    if unknown:
        raise SystemExit(f"✘ unknown corpus name(s) {unknown}: use {list(FLAT_CORPORA) + list(NESTED_CORPORA)}")
    manifest: Dict[str, Any] = {"source": str(src), "limit": limit, "corpora": {}}
    for name in names:
        splits: Dict[str, Any] = {}
        for split in SPLITS:
            if name in FLAT_CORPORA:
                corpus = FLAT_CORPORA[name]
                path = flat_split_file(src, corpus, split)
                if path is None:
                    continue
                if path.name == "train.reconstructed.tsv":
                    print(f"ℹ {name}: using the rebuilt {path} (the original train.tsv is absent)")
                splits[split] = _convert([path], out / name / f"{split}.spacy", corpus.fmt, name, corpus.labels, limit)
            else:
                source = nested_source(src, name, split)
                if source is None:
                    continue
                print(f"ℹ {name} {split}: {source.note}")
                splits[split] = _convert(source.files, out / name / f"{split}.spacy", source.fmt, name, GENIA_TYPES, limit)
                splits[split]["note"] = source.note
        if not splits:
            print(f"⚠ skipping {name}: not found in {src}")
            continue
        missing = [s for s in SPLITS if s not in splits]
        if missing:
            print(f"⚠ {name}: no {'/'.join(missing)} file in {src}, converted {'/'.join(splits)} only")
        manifest["corpora"][name] = splits
    if not manifest["corpora"]:
        raise SystemExit(f"✘ no corpus found in {src}: run fetch-local (data_dir) or 'weasel assets' first")
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf8")
    print(f"✔ converted {len(manifest['corpora'])} corpora into {out}: {', '.join(manifest['corpora'])}")
    return manifest


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path, help="folder with the corpora (assets/corpora)")
    parser.add_argument("out", type=Path, help="output folder (corpus)")
    parser.add_argument("--limit", type=int, default=0, help="keep the first N docs of every split (0: all)")
    parser.add_argument("--corpora", default="all", help="comma-separated project corpus names, or 'all'")
    args = parser.parse_args(argv)
    convert_all(args.src, args.out, limit=args.limit or None, corpora=args.corpora)


if __name__ == "__main__":
    main()
