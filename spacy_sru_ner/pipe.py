"""The ``sru_ner`` pipeline component: nested entity spans from the slot decoder."""
import logging
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, Union

import numpy
import srsly
from spacy import util
from spacy.attrs import IDX, LENGTH
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import filter_spans
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate

from .actions import EOA, SHIFT, ActionVocab, ScoredSpan, label_nesting, limit_labels_per_span, nested_labels
from .actions import merge_heads, probs_to_spans, spans_to_rows, unnest_labels
from .contract import DEFAULT_SPANS_KEY, get_annotated_labels, gold_spans, label_prefix, strip_prefix
from .lexicon import Lexicon, MentionLexicon
from .loss import DisjointLabels, disjoint_sets, exclusive_actions, step_targets, weighted_bce
from .model import SlotInput, SlotOutput, Window, ensure_decoder
from .scorer import score_spans
from .span_aux import span_loss, span_targets

logger = logging.getLogger("spacy_sru_ner")

#: one decoded window: (token offset in its doc, number of words, step probabilities)
WindowProbs = Tuple[int, int, numpy.ndarray]

default_model_config = """
[model]
@architectures = "spacy_sru_ner.SlotDecoder.v1"
hidden_width = 128
queries_per_action = 2
half_context = 150
dropout_positions = 0.2
dropout_queries = 0.2
dropout_scores = 0.0
dropout_mlp = 0.1
token_multiplier = 1.0
train_token_multiplier = false
max_train_steps_factor = 2.0
max_predict_steps_factor = 1.5
slot_state = true

[model.tok2vec]
@architectures = "spacy.Tok2Vec.v2"

[model.tok2vec.embed]
@architectures = "spacy.MultiHashEmbed.v2"
width = 96
attrs = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
rows = [5000, 1000, 2500, 2500]
include_static_vectors = false

[model.tok2vec.encode]
@architectures = "spacy.MaxoutWindowEncoder.v2"
width = 96
depth = 4
window_size = 1
maxout_pieces = 3
"""
DEFAULT_MODEL = Config().from_str(default_model_config)["model"]


@Language.factory(
    "sru_ner",
    assigns=["doc.spans"],
    default_config={
        "model": DEFAULT_MODEL,
        "spans_key": DEFAULT_SPANS_KEY,
        "threshold": 0.5,
        "label_thresholds": {},
        "max_positive": None,
        "write_ents": False,
        "strip_prefixes": False,
        "max_length": 256,
        "masking": True,
        "project_coeff": 1.0,
        "shift_bar": 1.0,
        "disjoint_labels": [],
        "lexicon_release": "all",
        "positive_weight": 10.0,
        "decoder_lr_scale": 3.0,
        "nest_depth": 0,
        "span_aux_weight": 1.0,
        "scorer": {"@scorers": "spacy_sru_ner.span_scorer.v1"},
    },
    default_score_weights={
        f"spans_{DEFAULT_SPANS_KEY}_f": 1.0,
        f"spans_{DEFAULT_SPANS_KEY}_p": 0.0,
        f"spans_{DEFAULT_SPANS_KEY}_r": 0.0,
    },
)
def make_sru_ner(
    nlp: Language,
    name: str,
    model: Model[SlotInput, SlotOutput],
    spans_key: str,
    threshold: float,
    label_thresholds: Dict[str, float],
    max_positive: Optional[int],
    write_ents: bool,
    strip_prefixes: bool,
    max_length: int,
    masking: bool,
    project_coeff: float,
    shift_bar: float,
    disjoint_labels: List[Union[str, List[str]]],
    lexicon_release: str,
    positive_weight: float,
    decoder_lr_scale: float,
    nest_depth: int,
    span_aux_weight: float,
    scorer: Optional[Callable],
) -> "SlotNER":
    """Create an ``sru_ner`` component.

    spans_key: key of ``doc.spans`` that gets the predicted (nested) spans and
        from which gold spans are read (falling back to ``doc.ents``).
    threshold: probability above which a TRANSITION/REDUCE action is taken.
    label_thresholds: per-label thresholds that replace ``threshold`` for the
        labels they name (``tune-threshold --per-label`` sets them on dev data).
    max_positive: most labels one span may get (as spancat's setting): where
        the decoder predicts a span with more, the most probable are kept
        (1 for corpora whose types are disjoint; None: no limit). With
        corpus-prefixed labels (``BC5CDR$Disease``) the limit holds per corpus.
    write_ents: also set ``doc.ents`` to the longest non-overlapping spans.
    strip_prefixes: write the labels of a model trained with corpus-prefixed
        labels (``prefix_labels``) without their prefix: ``bc2gm$Gene`` and
        ``jnlpba$Gene`` are both written as ``Gene``; where spans of two
        corpora overlap (share a word) and get the same label, only the
        higher-scored one is kept (``actions.merge_heads``). Switch it on after
        training and threshold tuning, which score the prefixed labels.
    max_length: longest token window decoded at once; longer sentences or
        docs are split into windows and the spans merged back.
    masking: multi-corpus loss masking for labels an example's corpus does not
        annotate (False gives the naive-merge baseline).
    project_coeff: with masking, the target of a foreign action (a label the
        example's corpus does not annotate) is ``min(1, project_coeff * p)``
        for the model's own probability p: 1.0 gives it no gradient, more
        than 1 pushes it up (self-training).
    shift_bar: with masking, a gold SHIFT's target becomes the model's own
        probability (no gradient) where some foreign action's probability
        exceeds this bar (1.0: only where the decoder delays the SHIFT, i.e.
        a foreign action beats SHIFT).
    disjoint_labels: labels whose mentions never start or end at the same word
        as a mention of another of them (e.g. Chemical, Disease, Species). With
        masking, where an example's corpus marks the start (end) of a mention
        of one, the start (end) of the others is taught "no" there, even where
        the corpus does not annotate them ([] : all foreign labels are masked).
        Its plain labels form one such set; a list in it is a set of its own
        (``["A", "B", ["A", "C"]]``: A-B and A-C disjoint, B-C not).
    lexicon_release: with a mention lexicon (``initialize``'s ``lexicon``),
        where the gold SHIFT is not taught: "all" at every word where a text
        of a label the example's corpus does not annotate starts or ends;
        "free" only at those of them where the corpus's own gold has no
        action (no own mention starts or ends at the word).
    positive_weight: weight of the gold TRANSITION/REDUCE targets (the rare
        positives) in the mean BCE, relative to every other target.
    decoder_lr_scale: learning rate of the decoder's parameters relative to
        the optimizer's (the encoder's) rate, e.g. 15 for 3e-4 vs 2e-5.
    nest_depth: levels of same-label nesting that get their own actions: a
        mention inside d other mentions of its label is decoded as
        ``label#d`` (d capped at nest_depth) and written back as ``label``.
        0 (the paper's decoder): one TRANSITION/REDUCE pair per label.
    span_aux_weight: weight of the training-only span head's loss (spancat's
        objective on the shared tok2vec) beside the decoder's; used only when
        the model has a span head (``span_aux_width`` > 0).
    """
    return SlotNER(
        nlp.vocab,
        model,
        name,
        spans_key=spans_key,
        threshold=threshold,
        label_thresholds=label_thresholds,
        max_positive=max_positive,
        write_ents=write_ents,
        strip_prefixes=strip_prefixes,
        max_length=max_length,
        masking=masking,
        project_coeff=project_coeff,
        shift_bar=shift_bar,
        disjoint_labels=disjoint_labels,
        lexicon_release=lexicon_release,
        positive_weight=positive_weight,
        decoder_lr_scale=decoder_lr_scale,
        nest_depth=nest_depth,
        span_aux_weight=span_aux_weight,
        scorer=scorer,
    )


#: values of ``lexicon_release``
LEXICON_RELEASE = ("all", "free")


def _same_tokens(example: Example) -> bool:
    """Whether the predicted and reference docs have the same tokens (same
    text, same token offsets and lengths), so that gold spans need no alignment."""
    x, y = example.predicted, example.reference
    if len(x) != len(y) or x.text != y.text:
        return False
    return bool(numpy.array_equal(x.to_array([IDX, LENGTH]), y.to_array([IDX, LENGTH])))


class SlotNER(TrainablePipe):
    """Nested named entity recognition with SRU-NER's slot-based recurrent decoder."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model[SlotInput, SlotOutput],
        name: str = "sru_ner",
        *,
        spans_key: str = DEFAULT_SPANS_KEY,
        threshold: float = 0.5,
        label_thresholds: Optional[Dict[str, float]] = None,
        max_positive: Optional[int] = None,
        write_ents: bool = False,
        strip_prefixes: bool = False,
        max_length: int = 256,
        masking: bool = True,
        project_coeff: float = 1.0,
        shift_bar: float = 1.0,
        disjoint_labels: Optional[DisjointLabels] = None,
        lexicon_release: str = "all",
        positive_weight: float = 10.0,
        decoder_lr_scale: float = 3.0,
        nest_depth: int = 0,
        span_aux_weight: float = 1.0,
        scorer: Optional[Callable] = score_spans,
    ) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be a positive number of tokens, got {max_length}.")
        for setting, value in (("positive_weight", positive_weight), ("decoder_lr_scale", decoder_lr_scale)):
            if not value > 0:
                raise ValueError(f"{setting} of '{name}' must be > 0, got {value}.")
        label_thresholds = dict(label_thresholds or {})
        for label, value in [("(threshold)", threshold)] + sorted(label_thresholds.items()):
            if not 0.0 < value < 1.0:
                raise ValueError(f"Thresholds of '{name}' must lie strictly between 0 and 1, got {label}: {value}.")
        if max_positive is not None and max_positive < 1:
            raise ValueError(f"max_positive of '{name}' must be None or >= 1, got {max_positive}.")
        if not (isinstance(nest_depth, int) and nest_depth >= 0):
            raise ValueError(f"nest_depth of '{name}' must be an integer >= 0, got {nest_depth!r}.")
        if not project_coeff >= 0:
            raise ValueError(f"project_coeff of '{name}' must be >= 0, got {project_coeff}.")
        if lexicon_release not in LEXICON_RELEASE:
            raise ValueError(
                f"lexicon_release of '{name}' must be one of {list(LEXICON_RELEASE)}, got {lexicon_release!r}."
            )
        if not span_aux_weight >= 0:
            raise ValueError(f"span_aux_weight of '{name}' must be >= 0, got {span_aux_weight}.")
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: Dict[str, Any] = {
            "labels": [],
            "spans_key": spans_key,
            "threshold": threshold,
            "label_thresholds": label_thresholds,
            "max_positive": max_positive,
            "write_ents": write_ents,
            "strip_prefixes": strip_prefixes,
            "max_length": max_length,
            "masking": masking,
            "project_coeff": project_coeff,
            "shift_bar": shift_bar,
            "disjoint_labels": _disjoint_cfg(disjoint_labels or []),
            "lexicon_release": lexicon_release,
            "positive_weight": positive_weight,
            "decoder_lr_scale": decoder_lr_scale,
            "nest_depth": nest_depth,
            "span_aux_weight": span_aux_weight,
        }

    # --- labels ----------------------------------------------------------
    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> List[str]:
        return list(self.labels)

    @property
    def key(self) -> str:
        return self.cfg["spans_key"]

    @property
    def decoder_labels(self) -> Dict[str, str]:
        """The decoder's own labels, each mapped to its label: the labels, then
        their same-label nesting levels (``nest_depth``; see :func:`nested_labels`)."""
        key = (self.labels, self.cfg.get("nest_depth", 0))
        cached = getattr(self, "_decoder_labels", None)
        if cached is None or cached[0] != key:
            cached = (key, nested_labels(*key))
            self._decoder_labels = cached
        return cached[1]

    @property
    def actions(self) -> ActionVocab:
        labels = tuple(self.decoder_labels)
        vocab = getattr(self, "_actions", None)
        if vocab is None or vocab.labels != labels:
            vocab = ActionVocab(labels)
            self._actions = vocab
        return vocab

    def add_label(self, label: str) -> int:
        if not isinstance(label, str) or not label:
            raise ValueError(f"Labels of '{self.name}' must be non-empty strings, got {label!r}.")
        if label in self.labels:
            return 0
        if self.model.maybe_get_ref("decoder") is not None:
            raise ValueError(
                f"Cannot add label '{label}' to '{self.name}': the model was already built for "
                f"labels {list(self.labels)}. Add all labels before nlp.initialize()."
            )
        self.cfg["labels"].append(label)
        self.vocab.strings.add(label)
        return 1

    # --- initialization --------------------------------------------------
    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
        lexicon: Optional[Lexicon] = None,
        disjoint_labels: Optional[DisjointLabels] = None,
    ) -> None:
        """Set the labels and build the model.

        Labels come from ``labels`` (e.g. the output of ``spacy init labels``)
        or else from the data: every gold span label and every label the
        examples' corpora record as annotated.

        lexicon: label -> mention texts (``spacy_sru_ner.mention_lexicon.v1``).
            With masking, a gold SHIFT is not taught where a text of a label
            the example's corpus does not annotate starts or ends (see
            :mod:`.lexicon`). Kept in the component's cfg (initializing again
            without one removes it).
        disjoint_labels: replaces the ``disjoint_labels`` setting where given,
            e.g. read from a JSON file with ``spacy.read_labels.v1`` (labels
            with corpus prefixes such as ``bc5cdr$Chemical`` keep their '$'
            that way; written into a config or a weasel command, it comes
            back escaped as '$$'). Kept in the component's cfg.
        """
        validate_get_examples(get_examples, "SlotNER.initialize")
        if disjoint_labels is not None:
            self.cfg["disjoint_labels"] = _disjoint_cfg(disjoint_labels)
        if labels is not None:
            for label in labels:
                self.add_label(label)
        if self.model.maybe_get_ref("decoder") is None:
            if labels is None:
                found = set()
                for example in get_examples():
                    found.update(span.label_ for span in gold_spans(example.reference, self.key))
                    found.update(get_annotated_labels(example.reference) or [])
                for label in sorted(found):
                    self.add_label(label)
        if lexicon is not None:
            self._set_lexicon(lexicon)
        else:
            self.cfg.pop("lexicon", None)
        if not self.labels:
            raise ValueError(
                f"'{self.name}' has no labels. Initialize it with training data that has entities in "
                f"doc.spans['{self.key}'] or doc.ents, or pass labels via "
                f"[initialize.components.{self.name}.labels] (see `spacy init labels`)."
            )
        examples = list(islice(get_examples(), 10))
        docs = [eg.predicted for eg in examples]
        self.action_thresholds()  # label_thresholds must name known labels
        self._exclusive_actions()  # and so must disjoint_labels
        self.model.set_dim("nO", self.actions.n_actions)
        self.model.initialize(X=SlotInput(docs=docs, windows=self._windows(docs)))
        self.cfg["n_inputs"] = self.model.get_dim("nI")
        self._check_labels_seen(get_examples)

    def _set_lexicon(self, lexicon: Lexicon) -> None:
        unknown = sorted(set(lexicon) - set(self.labels))
        if unknown:
            raise ValueError(
                f"The mention lexicon of '{self.name}' names labels it does not have: {unknown}. Its labels: "
                f"{list(self.labels)} (prefix_labels of the lexicon's corpora and of training must agree)."
            )
        self.cfg["lexicon"] = {label: [list(words) for words in phrases] for label, phrases in lexicon.items()}
        logger.info(
            "sru_ner mention lexicon: %s",
            ", ".join(f"{label} {len(phrases)}" for label, phrases in sorted(lexicon.items())) or "empty",
        )

    def _lexicon(self) -> Optional[MentionLexicon]:
        """The cfg's mention lexicon, indexed (cached); None without one."""
        phrases = self.cfg.get("lexicon")
        if not phrases:
            return None
        cached = getattr(self, "_lexicon_cache", None)
        if cached is None or cached[0] is not phrases:
            cached = (phrases, MentionLexicon(phrases))
            self._lexicon_cache = cached
        return cached[1]

    def _release_rows(
        self, examples: Sequence[Example], windows: List[Window], gold_rows: List[numpy.ndarray]
    ) -> Optional[List[numpy.ndarray]]:
        """Per window, 1 at the gold SHIFT rows at words where a lexicon text of
        a label the example's corpus does not annotate starts or ends (with
        ``lexicon_release`` "free", only where the window's gold rows have no
        action at the word); None without a lexicon or masking."""
        lexicon = self._lexicon()
        if lexicon is None or not self.cfg["masking"]:
            return None
        words_by_doc: Dict[int, Set[int]] = {}
        for i, example in enumerate(examples):
            annotated = get_annotated_labels(example.reference)
            foreign = set() if annotated is None else (lexicon.labels - set(annotated))
            if foreign:
                words = [token.text.lower() for token in example.predicted]
                words_by_doc[i] = lexicon.release_words(words, foreign)
        free_only = self.cfg.get("lexicon_release", "all") == "free"
        release = []
        for (doc_i, start, _), rows in zip(windows, gold_rows):
            shift = rows[:, SHIFT]
            released = numpy.zeros_like(shift)
            found = words_by_doc.get(doc_i)
            if found:
                word = start + numpy.cumsum(shift) - shift  # the word each row is at
                released = shift * numpy.isin(word, list(found))
                if free_only:
                    acting = (shift == 0) & (rows[:, EOA] == 0)  # rows of own TRANSITIONs / REDUCEs
                    released = released * ~numpy.isin(word, word[acting])
            release.append(released.astype("float32"))
        return release

    def _check_labels_seen(self, get_examples: Callable[[], Iterable[Example]]) -> None:
        seen = set()
        for example in islice(get_examples(), 5000):
            seen.update(span.label_ for span in gold_spans(example.reference, self.key))
            annotated = get_annotated_labels(example.reference)
            if annotated:
                seen.update(annotated)
        unseen = [label for label in self.labels if label not in seen]
        if unseen:
            logger.warning(
                "sru_ner labels %s do not occur in the initialization data; the component can only "
                "learn them from data that annotates them.",
                unseen,
            )

    # --- windows ---------------------------------------------------------
    def _windows(self, docs: Sequence[Doc]) -> List[Window]:
        """Token windows to decode: sentences (when set) split into chunks of
        at most ``max_length`` tokens; empty docs get none."""
        max_length = self.cfg["max_length"]
        windows: List[Window] = []
        for i, doc in enumerate(docs):
            if len(doc) == 0:
                continue
            if doc.has_annotation("SENT_START"):
                bounds = [(sent.start, sent.end) for sent in doc.sents]
            else:
                bounds = [(0, len(doc))]
            for start, end in bounds:
                for chunk_start in range(start, end, max_length):
                    windows.append((i, chunk_start, min(end, chunk_start + max_length)))
        return windows

    # --- inference -------------------------------------------------------
    #: Docs longer than this many tokens are encoded and decoded piece by piece
    #: (consecutive windows up to about this many tokens), so memory does not grow
    #: with the length of a doc.
    segment_length: int = 4096
    #: Tokens of context on each side of a piece for an inline (non-listener)
    #: encoder; more than the receptive field of a CNN tok2vec, so the token
    #: vectors inside the piece are those of the whole doc.
    segment_margin: int = 64

    def predict(self, docs: Iterable[Doc]) -> List[List[ScoredSpan]]:
        """Decode each doc into scored (start, end, label, score) spans."""
        docs = list(docs)
        predictions: List[List[ScoredSpan]] = [[] for _ in docs]
        threshold = self.action_thresholds()
        for i, window in self._iter_window_probs(docs):  # spans as each piece is decoded: bounded memory
            predictions[i].extend(self.spans_from_probs([[window]], threshold)[0])
        return predictions

    def predict_probs(self, docs: Iterable[Doc]) -> List[List[WindowProbs]]:
        """Per doc, the greedy decoder's step probabilities of each window, as
        ``(token offset, n_words, probs)``. The decision threshold enters only
        when these are turned into spans (:meth:`spans_from_probs`), so one
        pass serves any threshold."""
        docs = list(docs)
        result: List[List[WindowProbs]] = [[] for _ in docs]
        for i, window in self._iter_window_probs(docs):
            result[i].append(window)
        return result

    def _iter_window_probs(self, docs: List[Doc]) -> Iterator[Tuple[int, WindowProbs]]:
        """``(doc index, window probs)`` for every window; docs longer than
        ``segment_length`` are encoded and decoded piece by piece."""
        short = [i for i, doc in enumerate(docs) if len(doc) <= self.segment_length]
        if short:
            windows = self._windows([docs[i] for i in short])
            pieces = [(docs[i], 0) for i in short]
            for doc_i, window in self._window_probs(pieces, windows):
                yield short[doc_i], window
        for i, doc in enumerate(docs):
            if len(doc) > self.segment_length:
                for piece, windows in self._segments(doc):
                    for _, window in self._window_probs([piece], windows):
                        yield i, window

    def action_thresholds(
        self, threshold: Optional[float] = None, label_thresholds: Optional[Dict[str, float]] = None
    ) -> numpy.ndarray:
        """The decision threshold of each TRANSITION/REDUCE action (in action
        order, without EOA and SHIFT): ``label_thresholds`` where it names the
        label, else ``threshold`` (both default to the component's cfg)."""
        threshold = self.cfg["threshold"] if threshold is None else threshold
        if label_thresholds is None:
            label_thresholds = self.cfg.get("label_thresholds") or {}
        unknown = sorted(set(label_thresholds) - set(self.labels))
        if unknown:
            raise ValueError(
                f"label_thresholds of '{self.name}' name labels the component does not have: {unknown}. "
                f"Its labels: {list(self.labels)}."
            )
        return numpy.repeat(
            numpy.array(
                [label_thresholds.get(label, threshold) for label in self.decoder_labels.values()], dtype="float32"
            ),
            2,
        )

    def spans_from_probs(
        self, probs: List[List[WindowProbs]], threshold: Union[float, numpy.ndarray]
    ) -> List[List[ScoredSpan]]:
        """The spans of :meth:`predict_probs`'s output at ``threshold`` (one
        number, or one per TRANSITION/REDUCE action as :meth:`action_thresholds`),
        at most ``max_positive`` labels per span (per corpus and span for
        corpus-prefixed labels: ``BC2GM$Gene`` does not compete with ``JNLPBA$DNA``)."""
        actions = self.actions
        max_positive = self.cfg.get("max_positive")
        base = self.decoder_labels if self.cfg.get("nest_depth", 0) else None

        def decode(window_probs: numpy.ndarray, n_words: int) -> List[ScoredSpan]:
            spans = probs_to_spans(window_probs, actions, threshold, n_words=n_words)
            return spans if base is None else unnest_labels(spans, base)

        return [
            [
                (s + offset, e + offset, label, score)
                for offset, n_words, window_probs in windows
                for s, e, label, score in limit_labels_per_span(decode(window_probs, n_words), max_positive, label_prefix)
            ]
            for windows in probs
        ]

    def _segments(self, doc: Doc) -> Iterator[Tuple[Tuple[Doc, int], List[Window]]]:
        """Pieces of a long doc: runs of consecutive windows of up to about
        ``segment_length`` tokens, as ``((doc to encode, its offset), windows)``
        with windows relative to the doc to encode."""
        listener = "listener" in self.model.get_ref("tok2vec").name
        run: List[Window] = []
        for window in self._windows([doc]) + [None]:
            if run and (window is None or window[2] - run[0][1] > self.segment_length):
                if listener:  # the upstream component has encoded the whole doc
                    yield (doc, 0), run
                else:
                    start = max(0, run[0][1] - self.segment_margin)
                    end = min(len(doc), run[-1][2] + self.segment_margin)
                    yield (doc[start:end].as_doc(), start), [(0, s - start, e - start) for _, s, e in run]
                run = []
            if window is not None:
                run.append(window)

    def _window_probs(self, pieces: List[Tuple[Doc, int]], windows: List[Window]) -> Iterator[Tuple[int, WindowProbs]]:
        """Run the model on ``(doc, offset)`` pieces and yield ``(piece index,
        (offset in the piece's original doc, n_words, probs))`` per window."""
        if not windows:
            return
        output = self.model.predict(SlotInput(docs=[doc for doc, _ in pieces], windows=windows))
        for (piece_i, start, end), probs in zip(windows, output.probs):
            # a copy, so that a window's rows do not keep its whole chunk's array alive
            yield piece_i, (pieces[piece_i][1] + start, end - start, numpy.array(self.model.ops.to_numpy(probs)))

    def set_annotations(self, docs: Iterable[Doc], predictions: List[List[ScoredSpan]]) -> None:
        """Write spans to ``doc.spans[spans_key]`` (scores in ``attrs["scores"]``)."""
        strip = bool(self.cfg.get("strip_prefixes", False))
        for doc, spans in zip(docs, predictions):
            if strip:
                spans = merge_heads(spans, strip_prefix, label_prefix)
            group = SpanGroup(doc, name=self.key, spans=[Span(doc, s, e, label=l) for s, e, l, _ in spans])
            group.attrs["scores"] = numpy.asarray([score for *_, score in spans], dtype="float32")
            doc.spans[self.key] = group
            if self.cfg["write_ents"]:
                doc.ents = filter_spans(list(group))

    # --- training --------------------------------------------------------
    def _gold(
        self, examples: Sequence[Example]
    ) -> Tuple[List[Window], List[numpy.ndarray], numpy.ndarray, List[List[Tuple[int, int, str]]]]:
        """The decoding windows of the examples' predicted docs, each window's
        gold action rows, its foreign-action mask (1 for the actions of
        labels its corpus does not annotate; zeros without masking), and its
        gold spans in decoder labels, relative to the window."""
        docs = [eg.predicted for eg in examples]
        windows = self._windows(docs)
        actions = self.actions
        label_set = set(self.labels)
        by_doc: Dict[int, List[Tuple[int, int, str]]] = {}
        foreign_by_doc: Dict[int, numpy.ndarray] = {}
        no_foreign = numpy.zeros((actions.n_actions,), dtype="float32")
        for i, example in enumerate(examples):
            gold = list(gold_spans(example.reference, self.key))
            for span in gold:
                if span.label_ not in label_set:
                    raise ValueError(
                        f"Gold span label '{span.label_}' ('{span.text}') is not a label of "
                        f"'{self.name}' {list(self.labels)}. Include it in the initialization data or "
                        f"in [initialize.components.{self.name}.labels]."
                    )
            if _same_tokens(example):  # spaCy's alignment costs ~0.6 ms per example, every update
                by_doc[i] = [(span.start, span.end, span.label_) for span in gold]
            else:
                aligned = example.get_aligned_spans_y2x(gold, allow_overlap=True)
                by_doc[i] = [(span.start, span.end, span.label_) for span in aligned]
            annotated = get_annotated_labels(example.reference)
            if self.cfg["masking"] and annotated is not None:
                missing = [name for name, label in self.decoder_labels.items() if label not in set(annotated)]
                foreign_by_doc[i] = actions.label_action_mask(missing)
        gold_rows = []
        window_spans = []
        foreign = numpy.zeros((len(windows), actions.n_actions), dtype="float32")
        n_inside = 0
        nest_depth = self.cfg.get("nest_depth", 0)
        for b, (doc_i, start, end) in enumerate(windows):
            inside = [(s - start, e - start, l) for s, e, l in by_doc[doc_i] if s >= start and e <= end]
            n_inside += len(inside)
            if nest_depth:
                inside = label_nesting(inside, nest_depth)
            gold_rows.append(spans_to_rows(end - start, inside, actions))
            window_spans.append(inside)
            foreign[b] = foreign_by_doc.get(doc_i, no_foreign)
        n_gold = sum(len(spans) for spans in by_doc.values())
        if n_inside < n_gold:
            logger.warning(
                "%d of %d gold spans in this batch cross a decoding window (a sentence boundary or "
                "max_length=%d tokens) and are left out of the training targets. Raise max_length or "
                "check the sentence boundaries of the training docs.",
                n_gold - n_inside, n_gold, self.cfg["max_length"],
            )
        return windows, gold_rows, foreign, window_spans

    def _training_input(self, examples: Sequence[Example]) -> SlotInput:
        windows, gold_rows, foreign, window_spans = self._gold(examples)
        docs = [eg.predicted for eg in examples]
        release = self._release_rows(examples, windows, gold_rows)
        inputs = SlotInput(docs=docs, windows=windows, gold=gold_rows, foreign=foreign, release=release)
        if self.model.maybe_get_ref("span_head") is not None and self.cfg.get("span_aux_weight", 1.0) > 0:
            labels = self.actions.labels
            own = 1.0 - foreign[:, [self.actions.transition(label) for label in labels]]
            spans, targets, weights = span_targets(windows, window_spans, own, labels, len(docs))
            inputs.spans = spans
            inputs.span_gold = (targets, weights)
        return inputs

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch of examples (teacher-forced, masked BCE).

        ``drop`` is the dropout rate of the model's Thinc layers (the tok2vec);
        the decoder's own dropouts are set in its config.
        """
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "SlotNER.update")
        inputs = self._training_input(examples)
        if not inputs.windows:
            return losses
        set_dropout_rate(self.model, drop)
        output, backprop = self.model.begin_update(inputs)
        loss, d_logits = self._loss(output, inputs.gold, inputs.foreign, inputs.release)
        d_span_logits = None
        if output.span_logits is not None:
            xp = self.model.ops.xp
            targets, weights = (xp.asarray(a) for a in inputs.span_gold)
            span_loss_value, d_span_logits = span_loss(
                xp, output.span_logits, targets, weights, self.cfg.get("span_aux_weight", 1.0)
            )
            loss += span_loss_value
        backprop(d_logits, d_span_logits)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], output: SlotOutput) -> Tuple[float, Any]:
        """Weighted mean binary cross-entropy over actions and active decoder
        steps, with targets built from the examples (see :mod:`.loss`).

        Returns the loss and its gradient with respect to the step logits
        (the decoder's loss; the span head's, if any, is added in :meth:`update`).
        """
        examples = list(examples)
        windows, gold_rows, foreign, _ = self._gold(examples)
        return self._loss(output, gold_rows, foreign, self._release_rows(examples, windows, gold_rows))

    def _loss(
        self,
        output: SlotOutput,
        gold_rows: List[numpy.ndarray],
        foreign: numpy.ndarray,
        release: Optional[List[numpy.ndarray]] = None,
    ) -> Tuple[float, Any]:
        xp = self.model.ops.xp
        n_rows = max([len(rows) for rows in gold_rows] + [1])
        gold = numpy.zeros((len(gold_rows), n_rows, self.actions.n_actions), dtype="float32")
        released = None if release is None else numpy.zeros((len(gold_rows), n_rows), dtype="float32")
        for b, rows in enumerate(gold_rows):
            gold[b, : len(rows)] = rows
            if released is not None:
                released[b, : len(rows)] = release[b]
        targets, positives = step_targets(
            xp,
            output.logits,
            xp.asarray(gold),
            output.cursor,
            output.delay,
            xp.asarray(foreign),
            project_coeff=self.cfg["project_coeff"],
            shift_bar=self.cfg["shift_bar"],
            exclusive=self._exclusive_actions(),
            release=None if released is None else xp.asarray(released),
        )
        return weighted_bce(xp, output.logits, targets, output.active, positives, self.cfg["positive_weight"])

    def _exclusive_actions(self) -> Optional[Any]:
        """The (A, A) matrix of actions that rule each other out
        (``disjoint_labels``), on the model's device; None without them."""
        disjoint = disjoint_sets(self.cfg.get("disjoint_labels") or ())
        key = (self.actions.labels, disjoint)
        cached = getattr(self, "_exclusive_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        unknown = sorted({label for labels in disjoint for label in labels} - set(self.labels))
        if unknown:
            raise ValueError(
                f"disjoint_labels of '{self.name}' name labels it does not have: {unknown}. "
                f"Its labels: {list(self.labels)}."
            )
        matrix = exclusive_actions(self.actions, disjoint)
        matrix = None if matrix is None else self.model.ops.xp.asarray(matrix)
        self._exclusive_cache = (key, matrix)
        return matrix

    def finish_update(self, sgd: Optimizer) -> None:
        """Update the weights; the decoder's (and the span head's) at
        ``decoder_lr_scale`` times the optimizer's learning rate."""
        scale = self.cfg["decoder_lr_scale"]
        decoder = self.model.maybe_get_ref("decoder")
        if scale == 1.0 or decoder is None:
            self.model.finish_update(sgd)
        else:
            self.model.get_ref("tok2vec").finish_update(sgd)
            decoder.finish_update(ScaledOptimizer(sgd, scale))
            head = self.model.maybe_get_ref("span_head")
            if head is not None:
                head.finish_update(ScaledOptimizer(sgd, scale))
        self._invalidate_tables()

    def use_params(self, params: dict) -> Iterator[None]:
        """Use the given (e.g. averaged) parameters inside the block; the
        decoder's cached weight tables are rebuilt on both sides of it. A plain
        generator, as ``Language.use_params`` drives it (like spaCy's own pipes)."""
        self._invalidate_tables()
        try:
            with self.model.use_params(params):
                self._invalidate_tables()
                yield
        finally:
            self._invalidate_tables()

    def _invalidate_tables(self) -> None:
        decoder = self.model.maybe_get_ref("decoder")
        if decoder is not None:
            decoder.shims[0]._model.invalidate_tables()

    # --- serialization ---------------------------------------------------
    def _build_from_cfg(self) -> None:
        """Build the decoder before its weights are loaded: the number of actions
        comes from the labels, the input width from ``cfg["n_inputs"]`` (or, in
        pipelines saved before it was stored, from the tok2vec's output width)."""
        if self.model.maybe_get_ref("decoder") is not None or not self.labels:
            return
        n_inputs = self.cfg.get("n_inputs")
        tok2vec = self.model.get_ref("tok2vec")
        if n_inputs is None and not tok2vec.has_dim("nO"):
            raise ValueError(
                f"Cannot load '{self.name}': its cfg has no n_inputs (the decoder's input width) and its "
                "tok2vec does not declare its output width. Add \"n_inputs\": <the tok2vec width> to the "
                "component's cfg file."
            )
        self.model.set_dim("nO", self.actions.n_actions)
        if n_inputs is not None and not self.model.has_dim("nI"):
            self.model.set_dim("nI", n_inputs)
        ensure_decoder(self.model)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "SlotNER":
        self._validate_serialization_attrs()

        def load_model(b: bytes) -> None:
            self._build_from_cfg()
            self.model.from_bytes(b)
            self._invalidate_tables()

        deserialize = {
            "cfg": lambda b: self.cfg.update(srsly.json_loads(b)),
            "vocab": lambda b: self.vocab.from_bytes(b, exclude=exclude),
            "model": load_model,
        }
        util.from_bytes(bytes_data, deserialize, exclude)
        return self

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "SlotNER":
        self._validate_serialization_attrs()

        def load_model(p: Path) -> None:
            with Path(p).open("rb") as file_:
                model_bytes = file_.read()
            self._build_from_cfg()
            self.model.from_bytes(model_bytes)
            self._invalidate_tables()

        deserialize = {
            "cfg": lambda p: self.cfg.update(srsly.read_json(p)),
            "vocab": lambda p: self.vocab.from_disk(p, exclude=exclude),
            "model": load_model,
        }
        util.from_disk(path, deserialize, exclude)
        return self


class ScaledOptimizer:
    """An optimizer proxy that applies ``lr_scale`` to every update it passes
    on (Thinc's optimizers take a per-call learning-rate scale); the state
    (moments, averages, step counts) stays in the wrapped optimizer."""

    def __init__(self, optimizer: Optimizer, lr_scale: float) -> None:
        self.optimizer = optimizer
        self.lr_scale = lr_scale

    def __call__(self, key: Any, weights: Any, gradient: Any, *, lr_scale: float = 1.0) -> Any:
        return self.optimizer(key, weights, gradient, lr_scale=lr_scale * self.lr_scale)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.optimizer, name)


def _disjoint_cfg(disjoint_labels: DisjointLabels) -> List[Union[str, List[str]]]:
    """``disjoint_labels`` as plain lists (for the cfg and its serialization)."""
    return [label if isinstance(label, str) else list(label) for label in disjoint_labels]
