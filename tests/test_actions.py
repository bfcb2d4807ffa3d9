import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_sru_ner.actions import (
    EOA,
    SHIFT,
    ActionVocab,
    group_actions,
    probs_to_spans,
    rows_to_spans,
    spans_to_actions,
    spans_to_rows,
)

LABELS = ("DNA", "protein", "cell_type")
VOCAB = ActionVocab(LABELS)


def _crosses(a, b):
    return a[0] < b[0] < a[1] < b[1] or b[0] < a[0] < b[1] < a[1]


@st.composite
def span_sets(draw, allow_same_label_crossing=False):
    n = draw(st.integers(min_value=0, max_value=25))
    if n == 0:
        return 0, []
    candidates = st.tuples(
        st.integers(0, n - 1), st.integers(1, n), st.sampled_from(LABELS)
    ).filter(lambda s: s[0] < s[1])
    spans = []
    for span in draw(st.lists(candidates, max_size=12)):
        if allow_same_label_crossing or not any(
            other[2] == span[2] and _crosses(other, span) for other in spans
        ):
            spans.append(span)
    return n, spans


def _rows_as_sets(matrix):
    return [numpy.nonzero(row)[0].tolist() for row in matrix]


def test_worked_example_from_the_design():
    vocab = ActionVocab(("DNA", "Protein"))
    tr = vocab.transition
    re = vocab.reduce
    spans = [(0, 2, "DNA"), (0, 1, "Protein"), (3, 4, "Protein")]
    rows = group_actions(spans_to_actions(4, spans, vocab))
    assert rows == [
        [tr("DNA"), tr("Protein")],
        [SHIFT],
        [re("Protein")],
        [SHIFT],
        [re("DNA")],
        [SHIFT],
        [tr("Protein")],
        [SHIFT],
        [re("Protein")],
        [EOA],
    ]
    assert rows_to_spans(rows, vocab) == sorted(spans)


@settings(max_examples=300, deadline=None)
@given(span_sets())
def test_round_trip_nested_and_overlapping(case):
    n, spans = case
    matrix = spans_to_rows(n, spans, VOCAB)
    assert matrix.shape[1] == VOCAB.n_actions
    # every row is {SHIFT}, {EOA} or a non-empty set of TR/RE actions
    for row in _rows_as_sets(matrix):
        assert row == [SHIFT] or row == [EOA] or (row and min(row) >= 2)
    assert int(matrix[:, SHIFT].sum()) == n
    assert _rows_as_sets(matrix)[-1] == [EOA]
    assert rows_to_spans(_rows_as_sets(matrix), VOCAB, n_words=n) == sorted(set(spans))


@settings(max_examples=200, deadline=None)
@given(span_sets())
def test_greedy_decoding_of_confident_probabilities_round_trips(case):
    n, spans = case
    matrix = spans_to_rows(n, spans, VOCAB)
    probs = numpy.where(matrix > 0, 0.99, 0.01).astype("float32")
    decoded = probs_to_spans(probs, VOCAB, threshold=0.5, n_words=n)
    assert [(s, e, l) for s, e, l, _ in decoded] == sorted(set(spans))
    assert all(score == pytest.approx(0.99) for *_, score in decoded)


@settings(max_examples=200, deadline=None)
@given(span_sets(allow_same_label_crossing=True))
def test_decoding_never_fails_and_yields_valid_spans(case):
    n, spans = case
    decoded = rows_to_spans(_rows_as_sets(spans_to_rows(n, spans, VOCAB)), VOCAB, n_words=n)
    assert len(decoded) == len(set(decoded))
    assert all(0 <= s < e <= n for s, e, _ in decoded)
    assert len(decoded) <= len(set(spans))
    # the start positions of each label survive (only the pairing of ends can change)
    for label in LABELS:
        assert {s for s, _, l in decoded if l == label} <= {s for s, _, l in spans if l == label}


def test_same_label_crossing_spans_swap_ends():
    spans = [(0, 3, "DNA"), (2, 5, "DNA")]
    decoded = rows_to_spans(_rows_as_sets(spans_to_rows(6, spans, VOCAB)), VOCAB)
    assert decoded == [(0, 5, "DNA"), (2, 3, "DNA")]


def test_different_label_crossing_spans_round_trip():
    spans = [(0, 3, "DNA"), (2, 5, "protein")]
    assert rows_to_spans(_rows_as_sets(spans_to_rows(6, spans, VOCAB)), VOCAB) == spans


def test_invalid_sequences_are_repaired():
    tr, re = VOCAB.transition, VOCAB.reduce
    rows = [
        [re("DNA")],  # REDUCE with nothing open: ignored
        [tr("protein")],
        [re("protein")],  # closes at the word it opened: empty, dropped
        [SHIFT],
        [tr("DNA")],  # never closed: discarded
        [SHIFT],
        [EOA],
        [re("DNA")],  # after EOA: ignored
    ]
    assert rows_to_spans(rows, VOCAB) == []


def test_same_span_twice_is_emitted_once():
    tr, re = VOCAB.transition, VOCAB.reduce
    rows = [[tr("DNA")], [tr("DNA")], [SHIFT], [re("DNA")], [re("DNA")], [EOA]]
    assert rows_to_spans(rows, VOCAB) == [(0, 1, "DNA")]


def test_repeated_opening_spills_into_extra_rows():
    spans = [(0, 2, "DNA"), (0, 1, "DNA")]
    rows = group_actions(spans_to_actions(2, spans, VOCAB))
    assert rows[:2] == [[VOCAB.transition("DNA")], [VOCAB.transition("DNA")]]
    assert rows_to_spans(rows, VOCAB) == sorted(spans)


def test_span_ending_at_last_word_is_kept():
    assert rows_to_spans(_rows_as_sets(spans_to_rows(3, [(1, 3, "DNA")], VOCAB)), VOCAB, n_words=3) == [(1, 3, "DNA")]


def test_invalid_spans_and_labels_raise():
    with pytest.raises(ValueError, match="Invalid span"):
        spans_to_rows(3, [(2, 5, "DNA")], VOCAB)
    with pytest.raises(KeyError, match="Unknown label 'Gene'"):
        spans_to_rows(3, [(0, 1, "Gene")], VOCAB)
    with pytest.raises(ValueError, match="Duplicate labels"):
        ActionVocab(("A", "A"))


def test_label_action_mask():
    mask = VOCAB.label_action_mask(["protein"])
    assert mask.tolist() == [0, 0, 0, 0, 1, 1, 0, 0]
    assert VOCAB.action_names()[4:6] == ["TR(protein)", "RE(protein)"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(1, 3), st.sampled_from("ABC"), st.floats(0.0, 1.0)),
        max_size=12,
        unique_by=lambda s: (s[0], s[1], s[2]),
    ),
    st.one_of(st.none(), st.integers(1, 3)),
)
def test_limit_labels_per_span(spans, max_positive):
    """At most max_positive labels per (start, end), the highest scoring, in input order."""
    from spacy_sru_ner.actions import limit_labels_per_span

    kept = limit_labels_per_span(spans, max_positive)
    assert kept == [s for s in spans if s in kept]
    if max_positive is None:
        assert kept == spans
        return
    for start, end in {(s[0], s[1]) for s in spans}:
        group = [s for s in spans if (s[0], s[1]) == (start, end)]
        chosen = [s for s in kept if (s[0], s[1]) == (start, end)]
        assert len(chosen) == min(len(group), max_positive)
        dropped = [s for s in group if s not in chosen]
        assert not dropped or min(s[3] for s in chosen) >= max(s[3] for s in dropped)


def test_limit_labels_per_span_per_corpus_prefix():
    """With corpus-prefixed labels the limit holds per corpus: one label per corpus and span."""
    from spacy_sru_ner.actions import limit_labels_per_span
    from spacy_sru_ner.contract import label_prefix

    spans = [
        (0, 2, "jnlpba$DNA", 0.9),
        (0, 2, "bc2gm$Gene", 0.8),
        (0, 2, "jnlpba$Gene", 0.7),
        (3, 4, "bc5cdr$Chemical", 0.6),
        (3, 4, "bc5cdr$Disease", 0.65),
    ]
    assert limit_labels_per_span(spans, 1, label_prefix) == [spans[0], spans[1], spans[4]]
    # without groups one label per span wins over all corpora
    assert limit_labels_per_span(spans, 1) == [spans[0], spans[4]]
    # unprefixed labels form one group: the same as no group
    plain = [(0, 1, "A", 0.2), (0, 1, "B", 0.3)]
    assert limit_labels_per_span(plain, 1, label_prefix) == [plain[1]]


@settings(max_examples=300, deadline=None)
@given(span_sets(), st.integers(0, 3))
def test_same_label_nesting_levels_round_trip(case, nest_depth):
    """Spans relabelled by same-label nesting depth go through the oracle and
    back, and map back to the original spans."""
    from spacy_sru_ner.actions import label_nesting, nested_labels, unnest_labels

    n, spans = case
    base = nested_labels(LABELS, nest_depth)
    vocab = ActionVocab(tuple(base))
    assert vocab.labels[: len(LABELS)] == LABELS  # the labels' own actions keep their ids
    relabelled = label_nesting(spans, nest_depth)
    assert sorted((s, e, base[l]) for s, e, l in relabelled) == sorted(set(spans))
    decoded = rows_to_spans(_rows_as_sets(spans_to_rows(n, relabelled, vocab)), vocab, n_words=n)
    assert [(s, e, l) for s, e, l, _ in unnest_labels([d + (1.0,) for d in decoded], base)] == sorted(set(spans))


def test_same_label_nesting_gets_its_own_actions():
    from spacy_sru_ner.actions import label_nesting, nested_labels, unnest_labels

    spans = [(0, 3, "protein"), (0, 1, "protein"), (1, 2, "DNA"), (2, 3, "protein"), (2, 3, "DNA")]
    assert label_nesting(spans, 0) == sorted(spans)
    assert label_nesting(spans, 1) == [
        (0, 1, "protein#1"), (0, 3, "protein"), (1, 2, "DNA"), (2, 3, "DNA"), (2, 3, "protein#1")
    ]
    inner = [(0, 4, "DNA"), (0, 3, "DNA"), (0, 2, "DNA"), (0, 1, "DNA")]
    assert [l for *_, l in label_nesting(inner, 2)] == ["DNA#2", "DNA#2", "DNA#1", "DNA"]
    base = nested_labels(("DNA", "protein"), 2)
    assert list(base) == ["DNA", "protein", "DNA#1", "protein#1", "DNA#2", "protein#2"]
    # one span decoded under two of its decoder labels is kept once, with its best score
    assert unnest_labels([(0, 2, "DNA#1", 0.7), (0, 2, "DNA", 0.9), (1, 2, "protein#2", 0.6)], base) == [
        (0, 2, "DNA", 0.9), (1, 2, "protein", 0.6)
    ]
    with pytest.raises(ValueError, match="clashes"):
        nested_labels(("DNA", "DNA#1"), 1)
    with pytest.raises(ValueError, match="nest_depth"):
        nested_labels(("DNA",), -1)
