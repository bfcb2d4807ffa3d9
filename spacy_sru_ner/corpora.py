"""Reading ``.spacy`` corpora and the multi-corpus training reader.

The Doc metadata and label helpers (annotated labels, corpus name, label
maps and prefixes) live in :mod:`spacy_sru_ner.contract`; they are imported
here too, so ``from spacy_sru_ner.corpora import ...`` of them keeps working.

Reader: ``spacy_sru_ner.MultiCorpus.v1`` (:func:`create_multi_corpus_reader`)
reads one ``.spacy`` file (or folder of them) per corpus, renames labels onto a
shared scheme (optionally prefixing them with the corpus name, as the
reference implementation does: ``BC5CDR$Disease``), records each reference
doc's corpus name and annotated labels, and interleaves the corpora
("proportional": all examples shuffled together; "uniform": each corpus
equally likely, sampled with replacement).
"""
import itertools
import logging
import random
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Set, Tuple, Union

import srsly.msgpack
from spacy.tokens import Doc, DocBin, Span, SpanGroup
from spacy.training import Example
from spacy.util import registry
from spacy.vocab import Vocab

from .contract import ANNOTATED_LABELS_KEY, CORPUS_KEY, DEFAULT_SPANS_KEY, PREFIX_SEP, LabelMap
from .contract import get_annotated_labels, get_corpus_name, gold_spans, set_annotated_labels
from .contract import map_label, prefix_label, relabel_doc, set_corpus_name, strip_prefix

__all__ = [
    # this module
    "FILE_TYPE",
    "READER_NAME",
    "SAMPLING",
    "MultiCorpus",
    "cached_msgpack_decoders",
    "create_multi_corpus_reader",
    "load_corpus_docs",
    "make_example",
    "read_spacy_docs",
    "resolve_spacy_files",
    "split_doc",
    # re-exported from .contract (their home since issue 11)
    "ANNOTATED_LABELS_KEY",
    "CORPUS_KEY",
    "DEFAULT_SPANS_KEY",
    "PREFIX_SEP",
    "LabelMap",
    "get_annotated_labels",
    "get_corpus_name",
    "gold_spans",
    "map_label",
    "prefix_label",
    "relabel_doc",
    "set_annotated_labels",
    "set_corpus_name",
    "strip_prefix",
]

logger = logging.getLogger("spacy_sru_ner")

SAMPLING = ("proportional", "uniform")
FILE_TYPE = ".spacy"
READER_NAME = "spacy_sru_ner.MultiCorpus.v1"


# ---------------------------------------------------------------------------
# Reading .spacy files


def resolve_spacy_files(path: Union[str, Path], name: Optional[str] = None) -> List[Path]:
    """The ``.spacy`` files of ``path`` (a file, or a folder searched
    recursively, sorted). Raises ValueError naming the path if there are none."""
    where = f"corpus '{name}': " if name else ""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob(f"*{FILE_TYPE}") if p.is_file())
        if not files:
            raise ValueError(f"{where}{path}: folder contains no {FILE_TYPE} files.")
        return files
    raise ValueError(
        f"{where}{path}: file not found. Convert the corpus first "
        f"(python -m spacy_sru_ner convert INPUT {path}) or fix the path."
    )


@contextmanager
def cached_msgpack_decoders() -> Iterator[None]:
    """Look srsly's msgpack decoders up once instead of once per call.

    ``DocBin.get_docs`` unpacks two msgpack blobs per doc, and each unpack
    asks catalogue for the registered decoders, which scans the installed
    packages' entry points: with a few hundred packages installed that is
    about 90% of the time to read a corpus (BC2GM train: 24 s -> 2 s).
    """
    registry_ = srsly.msgpack.msgpack_decoders
    install = "get_all" not in vars(registry_)  # re-entrant: the outermost use installs and removes
    if install:
        decoders = registry_.get_all()
        registry_.get_all = lambda: decoders  # type: ignore[method-assign]
    try:
        yield
    finally:
        if install:
            vars(registry_).pop("get_all", None)


def read_spacy_docs(path: Union[str, Path], vocab: Vocab, name: Optional[str] = None) -> List[Doc]:
    """All non-empty docs of a ``.spacy`` file or folder (user data restored).

    Raises ValueError naming the file if it is missing, unreadable or empty.
    """
    where = f"corpus '{name}': " if name else ""
    docs: List[Doc] = []
    for file_ in resolve_spacy_files(path, name):
        try:
            doc_bin = DocBin(store_user_data=True).from_disk(file_)
        except Exception as err:  # zlib / msgpack errors of a file that is no DocBin
            raise ValueError(f"{where}{file_}: not a readable {FILE_TYPE} file (DocBin): {err}") from err
        with cached_msgpack_decoders():
            docs.extend(doc for doc in doc_bin.get_docs(vocab) if len(doc))
    if not docs:
        raise ValueError(f"{where}{path}: contains no documents (empty {FILE_TYPE} file?).")
    return docs


def split_doc(doc: Doc, max_length: int, spans_key: str = DEFAULT_SPANS_KEY) -> List[Doc]:
    """``[doc]`` if ``max_length`` is 0 or ``len(doc) < max_length``; else its
    sentences shorter than ``max_length`` as new docs (user data, entities and
    the spans of ``spans_key`` that lie inside a sentence are kept), as spaCy's
    ``Corpus`` does. A long doc without sentence boundaries is skipped."""
    if max_length <= 0 or len(doc) < max_length:
        return [doc]
    if not doc.has_annotation("SENT_START"):
        return []
    pieces = []
    group = doc.spans[spans_key] if spans_key in doc.spans else None
    for sent in doc.sents:
        if len(sent) == 0 or len(sent) >= max_length:
            continue
        piece = sent.as_doc(copy_user_data=True)
        if group is not None:
            spans = [
                Span(piece, s.start - sent.start, s.end - sent.start, label=s.label_)
                for s in group
                if s.start >= sent.start and s.end <= sent.end
            ]
            piece.spans[spans_key] = SpanGroup(piece, name=spans_key, attrs=dict(group.attrs), spans=spans)
        pieces.append(piece)
    return pieces


def load_corpus_docs(
    path: Union[str, Path],
    vocab: Vocab,
    name: str,
    *,
    label_map: Optional[LabelMap] = None,
    prefix_labels: bool = False,
    spans_key: str = DEFAULT_SPANS_KEY,
    max_length: int = 0,
    limit: int = 0,
    keep_recorded_name: bool = False,
) -> List[Doc]:
    """Read one corpus and prepare its docs as reference docs.

    Labels are renamed with ``label_map`` and, with ``prefix_labels``,
    prefixed with the corpus name. Each doc records the corpus name and its
    annotated labels: the recorded ones (renamed the same way), else the
    labels found anywhere in the corpus; labels of the doc's own mentions are
    always included. ``keep_recorded_name``: a corpus name already recorded on
    a doc wins over ``name`` (used by evaluation, where ``name`` is the file
    stem); by default ``name`` is written.
    """
    docs = read_spacy_docs(path, vocab, name)
    if limit > 0:
        docs = docs[:limit]
    found: Set[str] = set()
    for doc in docs:
        found.update(span.label_ for span in gold_spans(doc, spans_key))
    result: List[Doc] = []
    for doc in docs:
        recorded = get_annotated_labels(doc)
        doc_name = (get_corpus_name(doc) if keep_recorded_name else None) or name
        prefix = doc_name if prefix_labels else None
        base = recorded if recorded is not None else found
        for piece in split_doc(doc, max_length, spans_key):
            relabel_doc(piece, label_map, prefix, spans_key, annotated=base)
            set_corpus_name(piece, doc_name)
            result.append(piece)
    return result


def make_example(nlp, reference: Doc) -> Example:
    """An Example with a fresh predicted doc for ``reference`` (as spaCy's Corpus)."""
    if reference.has_unknown_spaces:
        predicted = Doc(
            nlp.vocab,
            words=[token.text for token in reference],
            spaces=[bool(token.whitespace_) for token in reference],
        )
    else:
        predicted = nlp.make_doc(reference.text)
    return Example(predicted, reference)


# ---------------------------------------------------------------------------
# The reader


def _check_known_corpora(option: str, entries: Mapping[str, object], paths: Mapping[str, object]) -> None:
    """Raise if ``entries`` (a per-corpus setting) names a corpus not in ``paths``."""
    unknown = sorted(set(entries) - set(paths))
    if unknown:
        raise ValueError(
            f"MultiCorpus: {option} has entries for unknown corpora {unknown}; the corpora are {sorted(paths)}."
        )


class MultiCorpus:
    """Interleave several ``.spacy`` corpora as training or evaluation Examples.

    Calling the reader with an ``nlp`` object yields the Examples of one epoch;
    every call is a new epoch (new shuffle / new sample), deterministic given
    ``seed`` and the number of earlier calls. See
    :func:`create_multi_corpus_reader` for the arguments.
    """

    def __init__(
        self,
        paths: Mapping[str, Optional[Union[str, Path]]],
        *,
        label_maps: Optional[Mapping[str, LabelMap]] = None,
        prefix_labels: bool = False,
        sampling: str = "proportional",
        mention_fraction: Optional[float] = None,
        corpus_weights: Optional[Mapping[str, float]] = None,
        max_length: int = 0,
        limit: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        spans_key: str = DEFAULT_SPANS_KEY,
    ) -> None:
        if sampling not in SAMPLING:
            raise ValueError(f"MultiCorpus: sampling must be one of {list(SAMPLING)}, got {sampling!r}.")
        if mention_fraction is not None:
            if sampling != "uniform":
                raise ValueError(
                    "MultiCorpus: mention_fraction needs sampling = \"uniform\" (proportional epochs use "
                    f"every example once); got sampling = {sampling!r}."
                )
            if not 0.0 <= mention_fraction <= 1.0:
                raise ValueError(f"MultiCorpus: mention_fraction must be in [0, 1], got {mention_fraction}.")
        if corpus_weights:
            if sampling != "uniform":
                raise ValueError(
                    "MultiCorpus: corpus_weights needs sampling = \"uniform\" (proportional epochs use "
                    f"every example once); got sampling = {sampling!r}."
                )
            bad = {name: w for name, w in corpus_weights.items() if not w >= 0.0}
            if bad:
                raise ValueError(f"MultiCorpus: corpus_weights must be >= 0, got {bad}.")
        if max_length < 0 or limit < 0:
            raise ValueError(f"MultiCorpus: max_length and limit must be >= 0, got {max_length} and {limit}.")
        skipped = [name for name, path in paths.items() if path is None or str(path) == ""]
        if skipped:
            logger.info("MultiCorpus: no path for corpora %s, skipping them.", skipped)
        self.paths: Dict[str, Path] = {
            str(name): Path(path) for name, path in paths.items() if path is not None and str(path) != ""
        }
        if not self.paths:
            raise ValueError(
                "MultiCorpus: no corpus paths given. Set at least one path, e.g. "
                "--paths.train_bc5cdr corpus/bc5cdr/train.spacy."
            )
        for name, path in self.paths.items():
            if PREFIX_SEP in name and prefix_labels:
                raise ValueError(f"MultiCorpus: corpus name {name!r} must not contain {PREFIX_SEP!r}.")
            resolve_spacy_files(path, name)  # fail early, naming the file
        _check_known_corpora("corpus_weights", corpus_weights or {}, paths)
        self.corpus_weights: Optional[List[float]] = None
        if corpus_weights:
            self.corpus_weights = [float(corpus_weights.get(name, 1.0)) for name in self.paths]
            if not any(self.corpus_weights):
                raise ValueError(f"MultiCorpus: corpus_weights are all 0 for the corpora {sorted(self.paths)}.")
        label_maps = dict(label_maps or {})
        _check_known_corpora("label_maps", label_maps, paths)
        self.label_maps: Dict[str, Dict[str, Optional[str]]] = {
            name: dict(label_maps.get(name) or {}) for name in self.paths
        }
        self.prefix_labels = prefix_labels
        self.sampling = sampling
        self.mention_fraction = mention_fraction
        self.max_length = max_length
        self.limit = limit
        self.shuffle = shuffle
        self.seed = seed
        self.spans_key = spans_key
        self.epoch = 0
        self._cache: Optional[Tuple[Vocab, Dict[str, List[Doc]]]] = None

    def load(self, vocab: Vocab) -> Dict[str, List[Doc]]:
        """The prepared reference docs of every corpus (corpus order kept).

        Read from disk once per vocab and kept: the reference docs are not
        changed by training, and spaCy asks for the corpus several times
        (initialization, every epoch)."""
        if self._cache is not None and self._cache[0] is vocab:
            return self._cache[1]
        docs = {
            name: load_corpus_docs(
                path,
                vocab,
                name,
                label_map=self.label_maps[name],
                prefix_labels=self.prefix_labels,
                spans_key=self.spans_key,
                max_length=self.max_length,
                limit=self.limit,
            )
            for name, path in self.paths.items()
        }
        self._cache = (vocab, docs)
        return docs

    def order(
        self, sizes: Sequence[int], rng: random.Random, pools: Optional[Sequence[Tuple[List[int], List[int]]]] = None
    ) -> List[Tuple[int, int]]:
        """(corpus index, doc index) pairs of one epoch. ``pools``: per corpus,
        the indices of its docs with and without a mention (used with
        ``mention_fraction``)."""
        if self.sampling == "uniform":
            weights = self.corpus_weights
            non_empty = [c for c, size in enumerate(sizes) if size > 0 and (weights is None or weights[c] > 0)]
            if not non_empty:
                return []
            n = max(1, round(sum(sizes[c] for c in non_empty) / len(non_empty)))
            cum = None if weights is None else list(itertools.accumulate(weights[c] for c in non_empty))
            pairs = []
            for _ in range(n):
                if cum is None:
                    c = non_empty[rng.randrange(len(non_empty))]
                else:
                    c = rng.choices(non_empty, cum_weights=cum)[0]
                if pools is None or self.mention_fraction is None:
                    pairs.append((c, rng.randrange(sizes[c])))
                    continue
                mentions, others = pools[c]
                pool = mentions if (rng.random() < self.mention_fraction or not others) and mentions else others
                pairs.append((c, pool[rng.randrange(len(pool))]))
            return pairs
        pairs = [(c, i) for c, size in enumerate(sizes) for i in range(size)]
        if self.shuffle:
            rng.shuffle(pairs)
        return pairs

    def _mention_pools(self, loaded: Dict[str, List[Doc]]) -> List[Tuple[List[int], List[int]]]:
        """Per corpus, (indices of docs with a mention, indices of docs without),
        computed once for the loaded corpora (``load``'s cached dict)."""
        cached = getattr(self, "_pools", None)
        if cached is None or cached[0] is not loaded:
            pools = []
            for docs in loaded.values():
                has = [bool(len(gold_spans(doc, self.spans_key))) for doc in docs]
                pools.append(([i for i, h in enumerate(has) if h], [i for i, h in enumerate(has) if not h]))
            cached = (loaded, pools)
            self._pools = cached
        return cached[1]

    def __call__(self, nlp) -> Iterator[Example]:
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        self.epoch += 1
        loaded = self.load(nlp.vocab)
        corpora = list(loaded.values())
        pools = self._mention_pools(loaded) if self.mention_fraction is not None else None
        for c, i in self.order([len(docs) for docs in corpora], rng, pools):
            yield make_example(nlp, corpora[c][i])


@registry.readers(READER_NAME)
def create_multi_corpus_reader(
    paths: Dict[str, Optional[str]],
    label_maps: Optional[Dict[str, Dict[str, Optional[str]]]] = None,
    prefix_labels: bool = False,
    sampling: str = "proportional",
    mention_fraction: Optional[float] = None,
    corpus_weights: Optional[Dict[str, float]] = None,
    max_length: int = 0,
    limit: int = 0,
    shuffle: bool = True,
    seed: int = 0,
    spans_key: str = DEFAULT_SPANS_KEY,
) -> Callable[..., Iterable[Example]]:
    """Read several ``.spacy`` corpora as one stream of Examples.

    paths: corpus name -> ``.spacy`` file or folder. Corpora whose path is null
        are skipped (so a config can list optional corpora).
    label_maps: corpus name -> {old label: new label}; a new label of null or
        "" drops the label. Applied to ``doc.spans[spans_key]``, ``doc.ents``
        and the recorded annotated labels.
    prefix_labels: prefix every label with its corpus name
        (``BC5CDR$Disease``), as the reference implementation does.
    sampling: "proportional" (every example of every corpus once per epoch,
        shuffled together if ``shuffle``) or "uniform" (each draw picks a corpus
        uniformly, then an example of it, with replacement; an epoch is the
        mean corpus size). With "uniform", set ``[training] max_epochs = -1``
        so that spaCy calls the reader for a fresh sample every epoch.
    mention_fraction: with "uniform" sampling, the share of each corpus's
        draws taken from its docs that have at least one mention (the rest from
        its docs without); null keeps the corpus's own share. Corpora with
        sparse mentions (LINNAEUS: 13% of sentences) then contribute more
        positives per update.
    corpus_weights: with "uniform" sampling, corpus name -> relative weight
        of its draws (corpora not named weigh 1.0; 0 leaves a corpus out of
        training draws), e.g. {"bc2gm": 2.0} gives BC2GM 2 of every 6 draws
        among five corpora. null or {} = every corpus equally often.
    max_length: docs of at least this many tokens are split into sentences
        (shorter ones kept), as in ``spacy.Corpus.v1``; 0 = no limit.
    limit: read only the first ``limit`` docs of each corpus; 0 = all.
    shuffle: shuffle proportional epochs (use false for dev sets).
    seed: random seed; each call (epoch) uses its own derived generator.
    spans_key: the ``doc.spans`` key with the mentions.

    Each reference doc records its corpus name and the labels its corpus
    annotates (after renaming/prefixing), which ``sru_ner`` uses to mask the
    loss and the scorer to score each corpus on its own labels only.
    """
    return MultiCorpus(
        paths,
        label_maps=label_maps,
        prefix_labels=prefix_labels,
        sampling=sampling,
        mention_fraction=mention_fraction,
        corpus_weights=corpus_weights,
        max_length=max_length,
        limit=limit,
        shuffle=shuffle,
        seed=seed,
        spans_key=spans_key,
    )
