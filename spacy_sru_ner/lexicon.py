"""Mention lexicons of the multi-corpus loss.

In multi-corpus training a word that one corpus marks as a mention (LINNAEUS:
"patients", "human" as Species) occurs unmarked in the corpora that do not
annotate the label (BC5CDR, NCBI-disease). The masked loss gives the foreign
label's actions no gradient there, but the gold SHIFT is still taught, and
SHIFT is what the label's TRANSITION has to beat at decoding. With a lexicon,
``sru_ner`` stops teaching SHIFT (its target becomes the model's own
probability) at the words where a mention text of a foreign label starts or
ends (:meth:`MentionLexicon.release_words`).

A lexicon maps each label to the texts (lowercased words) its corpus marks as
mentions at least ``min_count`` times and in at least ``min_precision`` of the
places where the text occurs in that corpus, so that "cells" or "protein" do
not enter it from a few annotated occurrences.
"""
from collections import Counter, defaultdict
from typing import Dict, Iterable, List, Sequence, Set, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from spacy.vocab import Vocab

from .contract import DEFAULT_SPANS_KEY, get_annotated_labels, gold_spans

Phrase = Tuple[str, ...]
#: label -> mention texts, each a list of lowercased words (JSON-friendly)
Lexicon = Dict[str, List[List[str]]]


def build_lexicon(
    docs: Iterable[Doc],
    *,
    spans_key: str = DEFAULT_SPANS_KEY,
    min_count: int = 2,
    min_precision: float = 0.5,
) -> Lexicon:
    """The mention lexicon of reference ``docs`` (each recording the labels its
    corpus annotates, as the multi-corpus reader's docs do; a doc without that
    record annotates every label). A text's precision for a label is counted
    over the docs that annotate the label."""
    if min_count < 1:
        raise ValueError(f"min_count of a mention lexicon must be >= 1, got {min_count}.")
    if not 0.0 <= min_precision <= 1.0:
        raise ValueError(f"min_precision of a mention lexicon must be in [0, 1], got {min_precision}.")
    docs = list(docs)
    mentions: Dict[str, Counter] = defaultdict(Counter)
    for doc in docs:
        for span in gold_spans(doc, spans_key):
            mentions[span.label_][tuple(token.text.lower() for token in span)] += 1
    candidates = {
        label: {phrase for phrase, n in counts.items() if n >= min_count} for label, counts in mentions.items()
    }
    occurrences: Dict[str, Counter] = defaultdict(Counter)
    index = _index((phrase, label) for label, phrases in candidates.items() for phrase in phrases)
    candidate_labels = set(candidates)
    for doc in docs:
        annotated = get_annotated_labels(doc)
        labels = candidate_labels if annotated is None else candidate_labels & set(annotated)
        for _, phrase, label in _matches(index, [token.text.lower() for token in doc], labels):
            occurrences[label][phrase] += 1
    return {
        label: sorted(
            list(phrase)
            for phrase in phrases
            if mentions[label][phrase] >= min_precision * max(occurrences[label][phrase], 1)
        )
        for label, phrases in sorted(candidates.items())
    }


def _index(entries: Iterable[Tuple[Phrase, str]]) -> Dict[str, List[Tuple[Phrase, str]]]:
    index: Dict[str, List[Tuple[Phrase, str]]] = defaultdict(list)
    for phrase, label in entries:
        if phrase:
            index[phrase[0]].append((phrase, label))
    return dict(index)


def _matches(
    index: Dict[str, List[Tuple[Phrase, str]]], words: Sequence[str], labels: Set[str]
) -> Iterable[Tuple[int, Phrase, str]]:
    for i, word in enumerate(words):
        for phrase, label in index.get(word, ()):
            if label in labels and tuple(words[i : i + len(phrase)]) == phrase:
                yield i, phrase, label


class MentionLexicon:
    """A lexicon (label -> mention texts) indexed by first word."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.labels = set(lexicon)
        self._index = _index((tuple(words), label) for label, phrases in lexicon.items() for words in phrases)

    def release_words(self, words: Sequence[str], labels: Set[str]) -> Set[int]:
        """Offsets into ``words`` (lowercased) where a mention text of one of
        ``labels`` starts, and the offsets just after one ends (where its
        REDUCE would be taught)."""
        found: Set[int] = set()
        for start, phrase, _ in _matches(self._index, words, labels):
            found.add(start)
            found.add(start + len(phrase))
        return found


@registry.misc("spacy_sru_ner.mention_lexicon.v1")
def create_mention_lexicon(
    corpora: object, min_count: int = 2, min_precision: float = 0.5, spans_key: str = DEFAULT_SPANS_KEY
) -> Lexicon:
    """The mention lexicon of a multi-corpus reader's training corpora (every
    doc of every corpus, with the reader's label maps and prefixes), for
    ``[initialize.components.sru_ner.lexicon]``:

        [initialize.components.sru_ner.lexicon]
        @misc = "spacy_sru_ner.mention_lexicon.v1"
        corpora = ${corpora.train}
        min_count = 2
        min_precision = 0.5
    """
    load = getattr(corpora, "load", None)
    if load is None:
        raise ValueError(
            "spacy_sru_ner.mention_lexicon.v1 needs a multi-corpus reader (spacy_sru_ner.MultiCorpus.v1), "
            f"e.g. corpora = ${{corpora.train}}; got {type(corpora).__name__}."
        )
    loaded = load(Vocab())
    return build_lexicon(
        (doc for docs in loaded.values() for doc in docs),
        spans_key=spans_key,
        min_count=min_count,
        min_precision=min_precision,
    )
