"""Tests for spacy_sru_ner.contract (doc metadata, labels) and spacy_sru_ner.corpora (the MultiCorpus reader)."""
from collections import Counter
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span
from spacy.util import load_config, registry

from spacy_sru_ner.contract import (
    get_annotated_labels,
    get_corpus_name,
    map_label,
    prefix_label,
    relabel_doc,
    set_annotated_labels,
    strip_prefix,
)
from spacy_sru_ner.corpora import (
    READER_NAME,
    MultiCorpus,
    create_multi_corpus_reader,
    split_doc,
    read_spacy_docs,
)

CONFIG = Path(__file__).parent.parent / "configs" / "multi_corpus_cpu.cfg"
Mention = Tuple[int, int, str]


def write_docbin(
    path: Path,
    docs: Sequence[Tuple[str, List[Mention]]],
    annotated: Optional[List[str]] = None,
    sents: bool = False,
) -> Path:
    """Write (text, mentions) docs; mentions go to doc.spans["sru_ner"] and doc.ents."""
    vocab = spacy.blank("en").vocab
    doc_bin = DocBin(store_user_data=True)
    for text, mentions in docs:
        words = text.split()
        sent_starts = [w[0].isupper() for w in words] if sents else None
        spaces = [True] * (len(words) - 1) + [False]
        doc = Doc(vocab, words=words, spaces=spaces, sent_starts=sent_starts)
        spans = [Span(doc, s, e, label=l) for s, e, l in mentions]
        doc.spans["sru_ner"] = spans
        if not any(a.end > b.start for a, b in zip(spans, spans[1:])):
            doc.set_ents(spans, default="outside")
        if annotated is not None:
            set_annotated_labels(doc, annotated)
        doc_bin.add(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc_bin.to_disk(path)
    return path


CHEM_DOCS = [(f"chem{i} dose {i} given", [(0, 1, "Chemical")]) for i in range(8)]
GENE_DOCS = [(f"gene{i} is expressed", [(0, 1, "GENE")]) for i in range(2)]


@pytest.fixture
def corpora(tmp_path):
    """Corpus "chem": 8 docs, annotated labels recorded; corpus "gene": 2 docs, none recorded."""
    return {
        "chem": str(write_docbin(tmp_path / "chem" / "train.spacy", CHEM_DOCS, ["Chemical"])),
        "gene": str(write_docbin(tmp_path / "gene" / "train.spacy", GENE_DOCS)),
    }


def texts(examples) -> List[str]:
    return [eg.reference.text for eg in examples]


def spans(doc: Doc) -> List[Mention]:
    return [(s.start, s.end, s.label_) for s in doc.spans["sru_ner"]]


def ents(doc: Doc) -> List[Mention]:
    return [(s.start, s.end, s.label_) for s in doc.ents]


def test_label_helpers():
    assert prefix_label("BC5CDR", "Disease") == "BC5CDR$Disease"
    assert strip_prefix("BC5CDR$Disease") == "Disease"
    assert strip_prefix("Disease") == "Disease"
    assert map_label("GENE", {"GENE": "Gene"}) == "Gene"
    assert map_label("GENE", {"GENE": "Gene"}, "bc2gm") == "bc2gm$Gene"
    assert map_label("Other", {"GENE": "Gene"}) == "Other"
    assert map_label("GENE", {"GENE": None}) is None
    assert map_label("GENE", {"GENE": ""}, "x") is None


def test_relabel_doc_spans_and_ents():
    doc = Doc(spacy.blank("en").vocab, words="a b c d e".split())
    doc.set_ents([Span(doc, 0, 1, "X"), Span(doc, 2, 4, "Y")], missing=[Span(doc, 4, 5)], default="outside")
    doc.spans["sru_ner"] = [Span(doc, 0, 1, "X"), Span(doc, 2, 4, "Y"), Span(doc, 2, 3, "Y")]
    doc.spans["sru_ner"].attrs["note"] = 1
    relabel_doc(doc, {"X": "Z", "Y": None}, "C")
    assert spans(doc) == [(0, 1, "C$Z")]
    assert doc.spans["sru_ner"].attrs["note"] == 1
    assert ents(doc) == [(0, 1, "C$Z")]
    # dropped entities become outside tokens, missing annotation stays missing
    assert [t.ent_iob_ for t in doc] == ["B", "O", "O", "O", ""]


def test_split_doc_keeps_spans_and_user_data():
    words = "Aa bb cc Dd ee".split()
    doc = Doc(spacy.blank("en").vocab, words=words, spaces=[1, 1, 1, 1, 0], sent_starts=[1, 0, 0, 1, 0])
    doc.spans["sru_ner"] = [Span(doc, 1, 3, "X"), Span(doc, 2, 3, "Y"), Span(doc, 4, 5, "X"), Span(doc, 2, 4, "Z")]
    set_annotated_labels(doc, ["X", "Y", "Z"])
    assert split_doc(doc, 0) == [doc]
    assert split_doc(doc, 6) == [doc]
    first, second = split_doc(doc, 4)
    assert first.text == "Aa bb cc " and second.text == "Dd ee"
    assert spans(first) == [(1, 3, "X"), (2, 3, "Y")]  # the cross-sentence Z span is lost
    assert spans(second) == [(1, 2, "X")]
    assert get_annotated_labels(second) == ["X", "Y", "Z"]
    assert [d.text for d in split_doc(doc, 3)] == ["Dd ee"]  # sentences of >= max_length tokens are skipped


def test_proportional_epoch(corpora):
    nlp = spacy.blank("en")
    reader = MultiCorpus(corpora, shuffle=False)
    examples = list(reader(nlp))
    assert texts(examples) == [t for t, _ in CHEM_DOCS + GENE_DOCS]
    for eg in examples:
        assert eg.predicted.text == eg.reference.text
        assert "sru_ner" not in eg.predicted.spans and not eg.predicted.user_data
    chem, gene = examples[0].reference, examples[-1].reference
    assert get_corpus_name(chem) == "chem" and get_annotated_labels(chem) == ["Chemical"]
    # no labels recorded: the labels found in the corpus file
    assert get_corpus_name(gene) == "gene" and get_annotated_labels(gene) == ["GENE"]
    shuffled = list(MultiCorpus(corpora, seed=1)(nlp))
    assert sorted(texts(shuffled)) == sorted(texts(examples))
    assert texts(shuffled) != texts(examples)


def test_label_map_and_prefix(corpora):
    nlp = spacy.blank("en")
    reader = MultiCorpus(corpora, label_maps={"gene": {"GENE": "Gene"}}, shuffle=False)
    gene = list(reader(nlp))[-1].reference
    assert spans(gene) == [(0, 1, "Gene")] and ents(gene) == [(0, 1, "Gene")]
    assert get_annotated_labels(gene) == ["Gene"]
    reader = MultiCorpus(corpora, label_maps={"gene": {"GENE": "Gene"}}, prefix_labels=True, shuffle=False)
    examples = list(reader(nlp))
    chem, gene = examples[0].reference, examples[-1].reference
    assert spans(chem) == [(0, 1, "chem$Chemical")] and ents(chem) == [(0, 1, "chem$Chemical")]
    assert get_annotated_labels(chem) == ["chem$Chemical"]
    assert spans(gene) == [(0, 1, "gene$Gene")] and get_annotated_labels(gene) == ["gene$Gene"]
    # a label mapped to null is dropped, also from the annotated set
    reader = MultiCorpus(corpora, label_maps={"chem": {"Chemical": None}}, shuffle=False)
    chem = list(reader(nlp))[0].reference
    assert spans(chem) == [] and ents(chem) == [] and get_annotated_labels(chem) == []


def test_sampling_counts(corpora):
    nlp = spacy.blank("en")
    proportional = MultiCorpus(corpora, seed=0)
    counts = Counter(get_corpus_name(eg.reference) for _ in range(20) for eg in proportional(nlp))
    assert counts == {"chem": 160, "gene": 40}
    uniform = MultiCorpus(corpora, sampling="uniform", seed=0)
    epochs = [list(uniform(nlp)) for _ in range(200)]
    assert {len(epoch) for epoch in epochs} == {5}  # the mean corpus size
    counts = Counter(get_corpus_name(eg.reference) for epoch in epochs for eg in epoch)
    assert 0.43 < counts["gene"] / 1000 < 0.57
    # with replacement: the small corpus's docs come back within an epoch
    assert any(len(set(texts(epoch))) < len(epoch) for epoch in epochs)
    assert {eg.reference.text for epoch in epochs for eg in epoch} == {t for t, _ in CHEM_DOCS + GENE_DOCS}


def test_mention_fraction_oversamples_docs_with_mentions(tmp_path):
    nlp = spacy.blank("en")
    sparse = [("Mice were used .", [(0, 1, "Species")])] + [(f"No mention {i} here .", []) for i in range(9)]
    dense = [(f"aspirin {i}", [(0, 1, "Chemical")]) for i in range(10)]
    paths = {
        "sparse": str(write_docbin(tmp_path / "sparse.spacy", sparse)),
        "dense": str(write_docbin(tmp_path / "dense.spacy", dense)),
    }

    def share_with_mentions(reader):
        drawn = [eg for _ in range(100) for eg in reader(nlp) if get_corpus_name(eg.reference) == "sparse"]
        return sum(bool(spans(eg.reference)) for eg in drawn) / len(drawn)

    assert share_with_mentions(MultiCorpus(paths, sampling="uniform", seed=0)) < 0.2
    assert 0.4 < share_with_mentions(MultiCorpus(paths, sampling="uniform", mention_fraction=0.5, seed=0)) < 0.6
    assert share_with_mentions(MultiCorpus(paths, sampling="uniform", mention_fraction=1.0, seed=0)) == 1.0
    # a corpus with no doc without mentions is drawn as it is
    dense_only = MultiCorpus({"dense": paths["dense"]}, sampling="uniform", mention_fraction=0.0, seed=0)
    assert len(list(dense_only(nlp))) == 10
    with pytest.raises(ValueError, match="uniform"):
        MultiCorpus(paths, mention_fraction=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        MultiCorpus(paths, sampling="uniform", mention_fraction=1.5)


def test_corpus_weights_shift_the_draws(corpora):
    nlp = spacy.blank("en")

    def gene_share(reader):
        counts = Counter(get_corpus_name(eg.reference) for _ in range(400) for eg in reader(nlp))
        return counts["gene"] / sum(counts.values())

    assert 0.45 < gene_share(MultiCorpus(corpora, sampling="uniform", seed=0)) < 0.55
    # gene weighs 3, chem (not named) 1: three of every four draws
    assert 0.70 < gene_share(MultiCorpus(corpora, sampling="uniform", corpus_weights={"gene": 3.0}, seed=0)) < 0.80
    # weight 0 leaves a corpus out of the draws; the epoch is the mean size of those drawn
    only_chem = MultiCorpus(corpora, sampling="uniform", corpus_weights={"gene": 0.0}, seed=0)
    assert gene_share(only_chem) == 0.0 and len(list(only_chem(nlp))) == 8
    # no weights and empty weights draw the same sample as before the option existed
    plain = texts(MultiCorpus(corpora, sampling="uniform", seed=5)(nlp))
    assert texts(MultiCorpus(corpora, sampling="uniform", corpus_weights={}, seed=5)(nlp)) == plain
    with pytest.raises(ValueError, match="unknown corpora"):
        MultiCorpus(corpora, sampling="uniform", corpus_weights={"genes": 2.0})
    with pytest.raises(ValueError, match="uniform"):
        MultiCorpus(corpora, corpus_weights={"gene": 2.0})
    with pytest.raises(ValueError, match=">= 0"):
        MultiCorpus(corpora, sampling="uniform", corpus_weights={"gene": -1.0})
    with pytest.raises(ValueError, match="all 0"):
        MultiCorpus(corpora, sampling="uniform", corpus_weights={"gene": 0.0, "chem": 0.0})


def test_seeded_determinism(corpora):
    nlp = spacy.blank("en")
    for sampling in ("proportional", "uniform"):
        a = MultiCorpus(corpora, sampling=sampling, seed=3)
        b = MultiCorpus(corpora, sampling=sampling, seed=3)
        c = MultiCorpus(corpora, sampling=sampling, seed=4)
        first_a, second_a = texts(a(nlp)), texts(a(nlp))
        assert first_a == texts(b(nlp)) and second_a == texts(b(nlp))
        assert first_a != second_a  # a new order every epoch
        assert first_a != texts(c(nlp))


def test_limit_and_max_length(tmp_path):
    nlp = spacy.blank("en")
    path = write_docbin(
        tmp_path / "s.spacy",
        [("Aa bb Cc dd ee", [(0, 2, "X"), (2, 4, "X")]), ("Ff gg", [(1, 2, "X")])],
        sents=True,
    )
    examples = list(MultiCorpus({"s": str(path)}, max_length=4, shuffle=False)(nlp))
    assert texts(examples) == ["Aa bb ", "Cc dd ee", "Ff gg"]
    assert [spans(eg.reference) for eg in examples] == [[(0, 2, "X")], [(0, 2, "X")], [(1, 2, "X")]]
    assert all(get_corpus_name(eg.reference) == "s" for eg in examples)
    examples = list(MultiCorpus({"s": str(path)}, limit=1, shuffle=False)(nlp))
    assert texts(examples) == ["Aa bb Cc dd ee"]


def test_errors(corpora, tmp_path):
    missing = tmp_path / "nope" / "train.spacy"
    with pytest.raises(ValueError, match=f"corpus 'x': {missing}: file not found"):
        MultiCorpus({**corpora, "x": str(missing)})
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(ValueError, match="no .spacy files"):
        MultiCorpus({"x": str(tmp_path / "empty_dir")})
    empty = tmp_path / "empty.spacy"
    DocBin().to_disk(empty)
    with pytest.raises(ValueError, match=f"{empty}: contains no documents"):
        list(MultiCorpus({"x": str(empty)})(spacy.blank("en")))
    garbage = tmp_path / "garbage.spacy"
    garbage.write_text("not a docbin")
    with pytest.raises(ValueError, match=f"{garbage}: not a readable"):
        list(MultiCorpus({"x": str(garbage)})(spacy.blank("en")))
    with pytest.raises(ValueError, match="sampling"):
        MultiCorpus(corpora, sampling="balanced")
    with pytest.raises(ValueError, match="unknown corpora"):
        MultiCorpus(corpora, label_maps={"chme": {"a": "b"}})
    with pytest.raises(ValueError, match="no corpus paths"):
        MultiCorpus({"a": None})


def test_null_paths_are_skipped(corpora):
    reader = MultiCorpus({**corpora, "absent": None}, shuffle=False)
    assert list(reader.paths) == ["chem", "gene"]
    assert len(list(reader(spacy.blank("en")))) == 10


def test_registered_reader(corpora):
    assert registry.readers.get(READER_NAME) is create_multi_corpus_reader
    config = {
        "train": {
            "@readers": READER_NAME,
            "paths": corpora,
            "label_maps": {"gene": {"GENE": "Gene"}},
            "sampling": "uniform",
            "seed": 1,
        }
    }
    reader = registry.resolve(config)["train"]
    assert isinstance(reader, MultiCorpus) and reader.sampling == "uniform"
    assert len(list(reader(spacy.blank("en")))) == 5


def test_multi_corpus_cpu_config(tmp_path):
    """configs/multi_corpus_cpu.cfg: builds the pipeline, and its readers read six
    corpora onto the shared label scheme (BC4CHEMD skipped while its path is null)."""
    raw = {
        "bc5cdr": [("aspirin causes asthma", [(0, 1, "Chemical"), (2, 3, "Disease")])],
        "bc4chemd": [("ethanol", [(0, 1, "Chemical")])],
        "bc2gm": [("BRCA1 gene", [(0, 1, "GENE")])],
        "jnlpba": [("IL-2 promoter in T cells", [(0, 2, "DNA"), (0, 1, "protein"), (3, 5, "cell_type")])],
        "linnaeus": [("in mice", [(1, 2, "Species")])],
        "ncbi_disease": [("breast cancer", [(0, 2, "Disease")])],
    }
    overrides = {}
    for name, docs in raw.items():
        for split in ("train", "dev"):
            path = write_docbin(tmp_path / name / f"{split}.spacy", docs)
            if name != "bc4chemd":
                overrides[f"paths.{split}_{name}"] = str(path)
    config = load_config(CONFIG, overrides=overrides, interpolate=True)
    nlp = spacy.util.load_model_from_config(load_config(CONFIG, overrides=overrides), auto_fill=True)
    assert nlp.pipe_names == ["sru_ner"] and nlp.get_pipe("sru_ner").cfg["masking"] is True
    corpora = registry.resolve({"corpora": config["corpora"]})["corpora"]
    assert corpora["train"].sampling == "uniform" and corpora["dev"].sampling == "proportional"
    scheme = set(config["initialize"]["components"]["sru_ner"]["labels"])
    # PubTator/BioRED names: JNLPBA's protein -> Gene, cell_line -> CellLine, cell_type -> CellType
    assert scheme == {"Chemical", "Disease", "Gene", "Species", "CellLine", "CellType", "DNA", "RNA"}
    examples = list(corpora["dev"](nlp))
    found = {get_corpus_name(eg.reference): set(get_annotated_labels(eg.reference)) for eg in examples}
    assert found == {
        "bc5cdr": {"Chemical", "Disease"},
        "bc2gm": {"Gene"},
        "jnlpba": {"DNA", "Gene", "CellType"},
        "linnaeus": {"Species"},
        "ncbi_disease": {"Disease"},
    }
    assert all(labels <= scheme for labels in found.values())
    assert len(list(corpora["train"](nlp))) == 1  # uniform: mean corpus size


def test_cached_msgpack_decoders_same_docs_and_restored(corpora):
    """Reading with the decoder lookup cached gives the same docs, and srsly's
    registry is left as it was, also when reading fails."""
    import srsly.msgpack

    from spacy_sru_ner.corpora import cached_msgpack_decoders

    path = corpora["chem"]
    vocab = spacy.blank("en").vocab
    plain = list(DocBin(store_user_data=True).from_disk(path).get_docs(vocab))
    cached = read_spacy_docs(path, vocab)
    assert [d.to_json() for d in cached] == [d.to_json() for d in plain if len(d)]
    assert [d.user_data for d in cached] == [d.user_data for d in plain if len(d)]
    registry_ = srsly.msgpack.msgpack_decoders
    assert "get_all" not in vars(registry_)
    with pytest.raises(RuntimeError):
        with cached_msgpack_decoders():
            assert "get_all" in vars(registry_)
            with cached_msgpack_decoders():  # nested use keeps the outer one's cache
                pass
            assert "get_all" in vars(registry_)
            raise RuntimeError("boom")
    assert "get_all" not in vars(registry_)
