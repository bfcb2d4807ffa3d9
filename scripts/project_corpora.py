"""The corpora of the spaCy project (project.yml): names, source folders, files.

Shared by the project scripts (fetch_local.py, convert_corpora.py, train.py,
evaluate.py). Imports nothing heavy, so it is cheap to import and to test.

Source layout (``assets/corpora/`` after ``fetch-local`` or ``weasel assets``,
or any ``data_dir``): the MTL-Bioinformatics-2016 layout, one folder per corpus
(``BC5CDR-IOB/{train,devel,test}.tsv`` ...), plus ``conll2003/{train,valid,test}.txt``
and GENIA:

* ``genia/{train,dev,test}.jsonlines``: Yan et al. 2022 split (CNN_Nested_NER;
  usually dev/test only) -> project corpus ``genia_yan``.
* Finkel & Manning / Ju et al. split -> project corpus ``genia_fm``: full nested
  ``genia.<split>.iob2`` (layered) where present, else the per-type
  ``<type>_<split>.conll`` files (MLC, lossy: inner same-type mentions missing),
  searched recursively under ``genia/fm_split_mlc/`` (shared/data layout),
  ``genia_fm_mlc/`` and ``genia_fm_partitions/`` (git assets layout).
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

SPLITS = ("train", "dev", "test")
GENIA_TYPES = ("DNA", "RNA", "cell_line", "cell_type", "protein")


@dataclass(frozen=True)
class FlatCorpus:
    """A flat (non-nested) corpus: one file per split in one source folder."""

    name: str  # project name: corpus/<name>/<split>.spacy, doc corpus name
    folder: str  # source folder (MTL-Bioinformatics-2016 name)
    fmt: str  # spacy_sru_ner convert format
    labels: Tuple[str, ...]  # labels the corpus annotates (as in the files)
    # candidate file names per split, first existing wins
    files: Dict[str, Tuple[str, ...]] = field(default_factory=dict)


MTL_FILES = {
    "train": ("train.tsv",),
    "dev": ("devel.tsv",),
    "test": ("test.tsv",),
}

FLAT_CORPORA: Dict[str, FlatCorpus] = {
    c.name: c
    for c in [
        FlatCorpus("bc5cdr", "BC5CDR-IOB", "iob", ("Chemical", "Disease"), MTL_FILES),
        FlatCorpus("bc5cdr_chem", "BC5CDR-chem-IOB", "iob", ("Chemical",), MTL_FILES),
        FlatCorpus("bc5cdr_disease", "BC5CDR-disease-IOB", "iob", ("Disease",), MTL_FILES),
        FlatCorpus("bc4chemd", "BC4CHEMD", "iob", ("Chemical",), MTL_FILES),
        FlatCorpus("bc2gm", "BC2GM-IOB", "iob", ("GENE",), MTL_FILES),
        FlatCorpus(
            "jnlpba",
            "JNLPBA",
            "iob",
            GENIA_TYPES,
            # the original train.tsv (git asset) or the rebuilt one (shared/data)
            {**MTL_FILES, "train": ("train.tsv", "train.reconstructed.tsv")},
        ),
        FlatCorpus("linnaeus", "linnaeus-IOB", "iob", ("Species",), MTL_FILES),
        FlatCorpus("ncbi_disease", "NCBI-disease-IOB", "iob", ("Disease",), MTL_FILES),
        FlatCorpus(
            "conll2003",
            "conll2003",
            "conll",
            ("LOC", "MISC", "ORG", "PER"),
            {"train": ("train.txt",), "dev": ("valid.txt",), "test": ("test.txt",)},
        ),
    ]
}

# the six biomedical corpora of configs/multi_corpus_cpu.cfg ([paths] train_<name>)
MULTI_CORPORA = ("bc5cdr", "bc4chemd", "bc2gm", "jnlpba", "linnaeus", "ncbi_disease")

GENIA_FOLDER = "genia"
GENIA_FM_FOLDERS = ("genia/fm_split_mlc", "genia_fm_mlc", "genia_fm_partitions")
GENIA_YAN = "genia_yan"
GENIA_FM = "genia_fm"
NESTED_CORPORA = (GENIA_FM, GENIA_YAN)

# folders that fetch-local copies from data_dir (top-level names)
SOURCE_FOLDERS: Tuple[str, ...] = tuple(c.folder for c in FLAT_CORPORA.values()) + (GENIA_FOLDER,)

PathLike = Union[str, Path]


def flat_split_file(root: PathLike, corpus: FlatCorpus, split: str) -> Optional[Path]:
    """The source file of one split of a flat corpus under ``root``, or None."""
    for name in corpus.files[split]:
        path = Path(root) / corpus.folder / name
        if path.is_file():
            return path
    return None


@dataclass
class NestedSource:
    """Inputs of one split of a nested corpus: files and their convert format."""

    fmt: str
    files: List[Path]
    note: str = ""


def _find(root: Path, folders: Sequence[str], pattern: str) -> List[Path]:
    found: List[Path] = []
    for folder in folders:
        base = root / folder
        if base.is_dir():
            found.extend(sorted(p for p in base.rglob(pattern) if p.is_file()))
    return found


def genia_fm_source(root: PathLike, split: str) -> Optional[NestedSource]:
    """GENIA F&M/Ju split: layered ``genia.<split>.iob2`` if found, else the MLC files."""
    root = Path(root)
    layered = _find(root, GENIA_FM_FOLDERS, f"genia.{split}.iob2")
    if layered:
        return NestedSource("genia-layered", layered[:1], "full nesting (layered iob2)")
    mlc: List[Path] = []
    for label in GENIA_TYPES:
        matches = _find(root, GENIA_FM_FOLDERS, f"{label}_{split}.conll")
        if matches:
            mlc.append(matches[0])
    if len(mlc) == len(GENIA_TYPES):
        return NestedSource(
            "genia-mlc", mlc, "per-type MLC files (inner same-type mentions missing)"
        )
    return None


def genia_yan_source(root: PathLike, split: str) -> Optional[NestedSource]:
    """GENIA Yan et al. 2022 split: ``genia/<split>.jsonlines``."""
    path = Path(root) / GENIA_FOLDER / f"{split}.jsonlines"
    if path.is_file():
        return NestedSource("genia", [path], "Yan et al. 2022 split (jsonlines)")
    return None


def nested_source(root: PathLike, corpus: str, split: str) -> Optional[NestedSource]:
    if corpus == GENIA_FM:
        return genia_fm_source(root, split)
    if corpus == GENIA_YAN:
        return genia_yan_source(root, split)
    raise ValueError(f"unknown nested corpus {corpus!r}: use one of {NESTED_CORPORA}")


def converted(corpus_dir: PathLike, name: str, split: str) -> Optional[Path]:
    """``corpus_dir/<name>/<split>.spacy`` if it exists."""
    path = Path(corpus_dir) / name / f"{split}.spacy"
    return path if path.is_file() else None


def parse_names(text: Optional[str], default: Sequence[str]) -> List[str]:
    """``"all"``/empty -> ``default``; else comma/space separated names."""
    if text is None or text.strip().lower() in ("", "all"):
        return list(default)
    return [n for n in text.replace(",", " ").split() if n]


MTL = "https://github.com/cambridgeltl/MTL-Bioinformatics-2016"
CC_BY = "CC BY 4.0 (MTL-Bioinformatics-2016 release)"
GENIA_LICENCE = "GENIA Project License for Annotated Corpora"
# corpus name -> (title, source, licence) for model cards (see also project.yml assets)
SOURCES: Dict[str, Tuple[str, str, str]] = {
    "bc5cdr": ("BC5CDR (BioCreative V CDR)", MTL, CC_BY),
    "bc5cdr_chem": ("BC5CDR chemicals", MTL, CC_BY),
    "bc5cdr_disease": ("BC5CDR diseases", MTL, CC_BY),
    "bc4chemd": ("BC4CHEMD", MTL, "redistribution status unclear (MTL-Bioinformatics-2016 README)"),
    "bc2gm": ("BC2GM (BioCreative II gene mention)", MTL, CC_BY),
    "jnlpba": ("JNLPBA", MTL, f"{CC_BY}; {GENIA_LICENCE}"),
    "linnaeus": ("LINNAEUS", MTL, CC_BY),
    "ncbi_disease": ("NCBI-disease", MTL, CC_BY),
    GENIA_FM: ("GENIA (Finkel & Manning split)", "https://github.com/matirojasg/nested-ner-mlc", GENIA_LICENCE),
    GENIA_YAN: ("GENIA (Yan et al. 2022 split)", "https://github.com/yhcc/CNN_Nested_NER", GENIA_LICENCE),
}
