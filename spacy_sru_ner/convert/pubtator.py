"""PubTator corpora: document-level text with character-offset mentions.

Format (blank line between documents)::

    PMID|t|title
    PMID|a|abstract
    PMID<TAB>start<TAB>end<TAB>mention<TAB>type<TAB>id...

Offsets refer to ``title + " " + abstract``. Relation lines
(``PMID<TAB>CID<TAB>id1<TAB>id2``) are ignored and counted. The file is parsed
by :func:`spacy_sru_ner.formats.iter_pubtator` (strict), which ``annotate``
also reads its PubTator input with.

The text is tokenized with a blank spaCy English tokenizer and split into
sentences with the ``sentencizer``. Mentions are mapped to tokens with
``doc.char_span(start, end, alignment_mode="expand")``; mentions whose
boundaries had to move are counted as realigned.

By default one Doc is written **per document** (with sentence starts set), so
no mention can be cut by a sentence boundary. With ``split_sentences=True``
one Doc is written per sentence; sentences joined by a mention that crosses
their boundary are kept together in one Doc (nothing is dropped) and counted.
"""
from typing import List, Tuple

from ..contract import map_label
from ..formats import PUBTATOR_HINT as HINT
from ..formats import PubtatorDocument, iter_pubtator
from .common import ConversionError, LabelMap, Mention, ParsedCorpus, ParsedDoc, PathLike
from .common import normalize_mentions


def _document_mentions(
    path: PathLike, document: PubtatorDocument, spacy_doc, label_map: LabelMap
) -> Tuple[List[Mention], int]:
    """Map the character offsets of ``document`` to tokens; return (mentions, realigned)."""
    text = document.text
    mentions: List[Mention] = []
    realigned = 0
    for ann in document.annotations:
        if ann.pmid != document.pmid:
            raise ConversionError(
                path, ann.line,
                f"annotation for {ann.pmid} inside document {document.pmid} (line {document.line})",
                HINT,
            )
        if not ann.label.strip():
            raise ConversionError(path, ann.line, "empty entity type", HINT)
        if not 0 <= ann.start < ann.end <= len(text):
            raise ConversionError(
                path, ann.line,
                f"offsets {ann.start}-{ann.end} are outside the text of document {document.pmid} "
                f"({len(text)} characters: title + ' ' + abstract)",
                "Check the offsets (end exclusive, relative to title + ' ' + abstract)",
            )
        found = text[ann.start:ann.end]
        if found != ann.mention:
            raise ConversionError(
                path, ann.line,
                f"mention {ann.mention!r} does not match the text at {ann.start}-{ann.end}: {found!r}",
                "Check the offsets (end exclusive, relative to title + ' ' + abstract)",
            )
        span = spacy_doc.char_span(ann.start, ann.end, alignment_mode="expand")
        if span is None or len(span) == 0:
            raise ConversionError(
                path, ann.line,
                f"mention {ann.mention!r} at {ann.start}-{ann.end} covers no token",
                "Mentions must contain non-whitespace text",
            )
        if (span.start_char, span.end_char) != (ann.start, ann.end):
            realigned += 1
        mentions.append((span.start, span.end, map_label(ann.label, label_map, drop_empty=False)))
    return mentions, realigned


def _split_records(
    document: PubtatorDocument, words: List[str], spaces: List[bool],
    sent_starts: List[bool], mentions: List[Mention],
) -> Tuple[List[ParsedDoc], int, int]:
    """One record per sentence, merging sentences a mention crosses; return (records, crossing, merged)."""
    sentence_of: List[int] = []
    for i, start in enumerate(sent_starts):
        sentence_of.append((sentence_of[-1] if i else -1) + (1 if start or i == 0 else 0))
    joined = set()  # sentence k joined to sentence k - 1
    crossing = 0
    for start, end, _ in mentions:
        first, last = sentence_of[start], sentence_of[end - 1]
        if first != last:
            crossing += 1
            joined.update(range(first + 1, last + 1))
    # token ranges of the groups
    bounds: List[int] = [
        i for i in range(len(words)) if i == 0 or (sent_starts[i] and sentence_of[i] not in joined)
    ]
    bounds.append(len(words))
    records = []
    for g_start, g_end in zip(bounds, bounds[1:]):
        group_mentions = [
            (s - g_start, e - g_start, label) for s, e, label in mentions if g_start <= s and e <= g_end
        ]
        starts = list(sent_starts[g_start:g_end])
        starts[0] = True
        records.append(
            ParsedDoc(
                words=words[g_start:g_end], spaces=spaces[g_start:g_end], sent_starts=starts,
                mentions=group_mentions, line=document.line, doc_id=document.pmid,
            )
        )
    return records, crossing, len(joined)


def read_pubtator(
    path: PathLike, label_map: LabelMap = None, split_sentences: bool = False
) -> ParsedCorpus:
    """Read a PubTator file: one record per document, or per sentence if ``split_sentences``."""
    import spacy  # a blank pipeline is cheap, but only needed here

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    corpus = ParsedCorpus(paths=[str(path)], docs=[])
    for document in iter_pubtator(path):
        corpus.skipped_relations += document.relations
        spacy_doc = nlp(document.text)
        if not len(spacy_doc) or not document.text.strip():
            raise ConversionError(path, document.line, f"document {document.pmid} has no text", HINT)
        raw_mentions, realigned = _document_mentions(path, document, spacy_doc, label_map)
        mentions, duplicates = normalize_mentions(raw_mentions)
        corpus.realigned += realigned
        corpus.duplicates += duplicates
        words = [t.text for t in spacy_doc]
        spaces = [bool(t.whitespace_) for t in spacy_doc]
        sent_starts = [bool(t.is_sent_start) or i == 0 for i, t in enumerate(spacy_doc)]
        if split_sentences:
            records, crossing, merged = _split_records(document, words, spaces, sent_starts, mentions)
            corpus.docs.extend(records)
            corpus.crossing += crossing
            corpus.merged_sentences += merged
        else:
            corpus.docs.append(
                ParsedDoc(
                    words=words, spaces=spaces, sent_starts=sent_starts, mentions=mentions,
                    line=document.line, doc_id=document.pmid,
                )
            )
    return corpus
