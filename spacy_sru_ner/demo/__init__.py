"""A small bundled GENIA sample (nested entities) and a CPU config for the demo.

Sentences from the GENIA corpus (Yan et al. 2022 split, dev set, first 52
abstracts); annotations (c) GENIA Project, CC BY 3.0; see LICENSE.md here.
"""
from pathlib import Path
from typing import List, Optional

from spacy.tokens import Doc
from spacy.vocab import Vocab

DEMO_DIR = Path(__file__).parent
DEMO_CONFIG = DEMO_DIR / "demo.cfg"
DEMO_TRAIN = DEMO_DIR / "genia_train.jsonl"
DEMO_DEV = DEMO_DIR / "genia_dev.jsonl"


def load_demo_docs(split: str = "train", vocab: Optional[Vocab] = None, limit: Optional[int] = None) -> List[Doc]:
    """Docs of the bundled sample (``split`` = "train" or "dev"), spans in
    ``doc.spans["sru_ner"]``."""
    from ..convert import corpus_to_docs

    path = {"train": DEMO_TRAIN, "dev": DEMO_DEV}[split]
    return corpus_to_docs(path, "genia", vocab, corpus_name="genia-demo", limit=limit)
