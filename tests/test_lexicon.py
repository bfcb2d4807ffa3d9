"""Mention lexicons: built from corpora (counts, precision, prefixes, config),
and their use in the masked loss (a gold SHIFT is not taught where a mention
text of a label the example's corpus does not annotate starts or ends)."""
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import registry
from thinc.api import Config

from spacy_sru_ner.actions import SHIFT, spans_to_rows
from spacy_sru_ner.contract import set_annotated_labels
from spacy_sru_ner.lexicon import MentionLexicon, build_lexicon

from conftest import SMALL_MODEL
from test_corpora import write_docbin


def ref_doc(vocab, text, mentions, annotated):
    doc = Doc(vocab, words=text.split())
    doc.spans["sru_ner"] = [Span(doc, s, e, label=l) for s, e, l in mentions]
    if annotated is not None:
        set_annotated_labels(doc, annotated)
    return doc


def species_corpus(vocab):
    """Species: 'patients' marked 3 of 3 times, 'human' 3 of 8, 'V. cholerae' 2 of 2, 'mice' once."""
    docs = [ref_doc(vocab, "Patients and human cells", [(0, 1, "Species"), (2, 3, "Species")], ["Species"])
            for _ in range(3)]
    docs += [ref_doc(vocab, "human serum of patients", [(3, 4, "Species")], ["Species"])]  # 'human' unmarked
    docs += [ref_doc(vocab, "the human genome", [], ["Species"]) for _ in range(4)]
    docs += [ref_doc(vocab, "V. cholerae grows", [(0, 2, "Species")], ["Species"]) for _ in range(2)]
    docs += [ref_doc(vocab, "mice", [(0, 1, "Species")], ["Species"])]
    return docs


def test_build_lexicon_counts_and_precision():
    vocab = spacy.blank("en").vocab
    # a Chemical corpus never marks 'patients': that does not lower Species' precision
    chemical = [ref_doc(vocab, "aspirin for patients", [(0, 1, "Chemical")], ["Chemical"]) for _ in range(5)]
    lexicon = build_lexicon(species_corpus(vocab) + chemical)
    assert lexicon == {"Species": [["patients"], ["v.", "cholerae"]], "Chemical": [["aspirin"]]}
    # precision 3/8 for 'human' passes a bar of 0.3; min_count 1 lets 'mice' in
    assert ["human"] in build_lexicon(species_corpus(vocab), min_precision=0.3)["Species"]
    assert ["mice"] in build_lexicon(species_corpus(vocab), min_count=1)["Species"]
    with pytest.raises(ValueError, match="min_precision"):
        build_lexicon([], min_precision=1.5)


def test_release_words_marks_starts_and_ends():
    lexicon = MentionLexicon({"Species": [["patients"], ["v.", "cholerae"]], "Chemical": [["aspirin"]]})
    words = "aspirin helps patients with v. cholerae".split()
    assert lexicon.release_words(words, {"Species"}) == {2, 3, 4, 6}
    assert lexicon.release_words(words, {"Chemical"}) == {0, 1}
    assert lexicon.release_words(words, set()) == set()


def test_mention_lexicon_from_config(tmp_path: Path):
    """spacy_sru_ner.mention_lexicon.v1 reads every doc of the reader's corpora,
    with the reader's prefixes, from ${corpora.train}."""
    species = [("patients with fever", [(0, 1, "Species")])] * 2 + [("human cells", [(0, 1, "Species")])]
    chemical = [("aspirin for patients", [(0, 1, "Chemical")])] * 2
    write_docbin(tmp_path / "species.spacy", species, ["Species"])
    write_docbin(tmp_path / "chemical.spacy", chemical, ["Chemical"])
    text = f"""
[corpora]
[corpora.train]
@readers = "spacy_sru_ner.MultiCorpus.v1"
paths = {{"linnaeus": "{tmp_path / 'species.spacy'}", "bc5cdr": "{tmp_path / 'chemical.spacy'}"}}
prefix_labels = true
[initialize]
[initialize.lexicon]
@misc = "spacy_sru_ner.mention_lexicon.v1"
corpora = ${{corpora.train}}
"""
    resolved = registry.resolve(Config().from_str(text)["initialize"])
    assert resolved["lexicon"] == {"linnaeus$Species": [["patients"]], "bc5cdr$Chemical": [["aspirin"]]}
    with pytest.raises(ValueError, match="multi-corpus reader"):
        registry.misc.get("spacy_sru_ner.mention_lexicon.v1")(corpora=[])


def make_pipe():
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL})
    return nlp, pipe


def example(nlp, text, mentions, annotated):
    reference = ref_doc(nlp.vocab, text, mentions, annotated)
    return Example(nlp.make_doc(reference.text), reference)


def test_loss_does_not_teach_shift_at_foreign_lexicon_mentions():
    """A Chemical example (Species foreign) with 'patients' in the Species
    lexicon: the gold SHIFTs at 'patients' and at the word after it get no
    gradient, every other (not delayed) SHIFT does; a Species example, and the pipe without
    a lexicon, teach every SHIFT. The lexicon survives to_bytes."""
    nlp, pipe = make_pipe()
    examples = [
        example(nlp, "aspirin helps patients recover", [(0, 1, "Chemical")], ["Chemical"]),
        example(nlp, "patients recover", [(0, 1, "Species")], ["Species"]),
    ]
    nlp.initialize(lambda: examples)
    with pytest.raises(ValueError, match="names labels it does not have"):
        pipe.initialize(lambda: examples, labels=["Chemical", "Species"], lexicon={"Gene": [["p53"]]})
    assert pipe._training_input(examples).release is None
    pipe.initialize(lambda: examples, labels=["Chemical", "Species"], lexicon={"Species": [["patients"]]})
    inputs = pipe._training_input(examples)
    rows = spans_to_rows(4, [(0, 1, "Chemical")], pipe.actions)
    shift_rows = numpy.flatnonzero(rows[:, SHIFT])  # the SHIFTs past words 0, 1, 2, 3
    expected = numpy.zeros(len(rows), dtype="float32")
    expected[shift_rows[[2, 3]]] = 1.0
    numpy.testing.assert_array_equal(inputs.release[0], expected)
    assert not inputs.release[1].any()

    output, _ = pipe.model.begin_update(inputs)
    _, d_logits = pipe.get_loss(examples, output)
    cursor = numpy.asarray(output.cursor)
    active = numpy.asarray(output.active) > 0
    is_shift = rows[cursor[0], SHIFT] == 1
    released = expected[cursor[0]] == 1
    d_shift = numpy.abs(d_logits[0, :, SHIFT])
    assert (active[0] & released).sum() >= 2
    assert numpy.all(d_shift[active[0] & released] < 1e-9)
    delayed = numpy.asarray(output.delay)[0] > 0  # a foreign action beat SHIFT: not taught either
    assert numpy.all(d_shift[active[0] & is_shift & ~released & ~delayed] > 1e-6)

    copy = make_pipe()[1].from_bytes(pipe.to_bytes())
    assert copy.cfg["lexicon"] == {"Species": [["patients"]]}
    numpy.testing.assert_array_equal(copy._training_input(examples).release[0], expected)
    pipe.initialize(lambda: examples, labels=["Chemical", "Species"])  # initialized again without one
    assert "lexicon" not in pipe.cfg and pipe._training_input(examples).release is None


@pytest.mark.parametrize("mode,released_words", [("all", [0, 1, 2, 3]), ("free", [2, 3])])
def test_lexicon_release_all_or_free_words(mode, released_words):
    """'aspirin' is both a Species text of the lexicon and the example's own
    Chemical: "all" releases the SHIFTs past words 0 and 1 (where the Species
    mention would start and end) too, "free" only those at words where the
    example's own gold has no action (2 and 3: 'patients' and the word after)."""
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL, "lexicon_release": mode})
    examples = [example(nlp, "aspirin helps patients recover", [(0, 1, "Chemical")], ["Chemical"])]
    pipe.initialize(lambda: examples, labels=["Chemical", "Species"], lexicon={"Species": [["aspirin"], ["patients"]]})
    rows = spans_to_rows(4, [(0, 1, "Chemical")], pipe.actions)
    expected = numpy.zeros(len(rows), dtype="float32")
    expected[numpy.flatnonzero(rows[:, SHIFT])[released_words]] = 1.0
    numpy.testing.assert_array_equal(pipe._training_input(examples).release[0], expected)
    with pytest.raises(ValueError, match="lexicon_release"):
        nlp.add_pipe("sru_ner", name="other", config={"model": SMALL_MODEL, "lexicon_release": "some"})
