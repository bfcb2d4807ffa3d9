"""Corpus-level metadata on Docs: which entity labels a doc's corpus annotates.

The annotated label set is stored in ``doc.user_data[ANNOTATED_LABELS_KEY]`` as a
sorted list of label strings, so it survives ``DocBin(store_user_data=True)``.
A doc without that record counts as annotated for every label of the component.
"""
from typing import Iterable, List, Optional

from spacy.tokens import Doc

ANNOTATED_LABELS_KEY = "sru_ner.annotated_labels"
CORPUS_KEY = "sru_ner.corpus"


def set_annotated_labels(doc: Doc, labels: Iterable[str]) -> None:
    """Record that ``doc``'s corpus annotates exactly ``labels``."""
    doc.user_data[ANNOTATED_LABELS_KEY] = sorted(set(labels))


def get_annotated_labels(doc: Doc) -> Optional[List[str]]:
    """Return the labels ``doc``'s corpus annotates, or None (= all labels)."""
    value = doc.user_data.get(ANNOTATED_LABELS_KEY)
    return None if value is None else list(value)


def set_corpus_name(doc: Doc, name: str) -> None:
    doc.user_data[CORPUS_KEY] = name


def get_corpus_name(doc: Doc) -> Optional[str]:
    return doc.user_data.get(CORPUS_KEY)
