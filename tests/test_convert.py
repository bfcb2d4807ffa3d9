"""Tests for the corpus converters (spacy_sru_ner.convert) and the convert CLI."""
import json
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab
from typer.testing import CliRunner

from spacy_sru_ner.cli import app
from spacy_sru_ner.convert import (
    DOC_ID_KEY,
    ConversionError,
    ConversionStats,
    convert_file,
    corpus_to_docs,
    detect_format,
    resolve_inputs,
)
from spacy_sru_ner.convert.common import (
    ParsedCorpus,
    ParsedDoc,
    count_nested_inner,
    has_overlap,
    write_corpus,
)
from spacy_sru_ner.convert.iob import iob_to_mentions
from spacy_sru_ner.contract import ANNOTATED_LABELS_KEY, get_annotated_labels, get_corpus_name

Span3 = Tuple[int, int, str]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def read_docs(path: Path) -> List[Doc]:
    return list(DocBin().from_disk(path).get_docs(Vocab()))


def spans_of(doc: Doc, key: str = "sru_ner") -> List[Span3]:
    return [(s.start, s.end, s.label_) for s in doc.spans[key]]


def ents_of(doc: Doc) -> List[Span3]:
    return [(s.start, s.end, s.label_) for s in doc.ents]


def tsv(rows: List[str]) -> str:
    """Lines 'token tag' (space in the test source for readability) -> token<TAB>tag."""
    return "\n".join(r.replace(" ", "\t", 1) if r.strip() else "" for r in rows) + "\n"


# ---------------------------------------------------------------------------
# IOB (MTL-Bioinformatics-2016 .tsv)

IOB_TEXT = tsv([
    "Selegiline B-Chemical",   # 1
    "- O",                     # 2
    "induced O",               # 3
    "postural B-Disease",      # 4
    "hypotension I-Disease",   # 5
    ". O",                     # 6
    "",                        # 7
    "No O",                    # 8
    "mentions O",              # 9
    "",                        # 10
    "Parkinson B-Disease",     # 11
    "' I-Disease",             # 12
    "s I-Disease",             # 13
    "disease I-Disease",       # 14
])


def test_iob_round_trip(tmp_path):
    src = write(tmp_path, "train.tsv", IOB_TEXT)
    out = tmp_path / "out" / "train.spacy"
    stats = convert_file(src, out, "iob", corpus_name="bc5cdr")
    assert isinstance(stats, ConversionStats)
    assert (stats.sentences, stats.documents, stats.tokens) == (3, 0, 12)
    assert stats.entities == {"Chemical": 1, "Disease": 2}
    assert stats.read == stats.written
    assert stats.repairs == 0 and stats.truncated_from is None
    docs = read_docs(out)
    assert [len(d) for d in docs] == [6, 2, 4]
    assert docs[0].text == "Selegiline - induced postural hypotension ."
    assert spans_of(docs[0]) == [(0, 1, "Chemical"), (3, 5, "Disease")]
    assert ents_of(docs[0]) == spans_of(docs[0])
    # a sentence without mentions is annotated as all-outside, not missing
    assert spans_of(docs[1]) == [] and [t.ent_iob_ for t in docs[1]] == ["O", "O"]
    assert spans_of(docs[2]) == [(0, 4, "Disease")]
    for doc in docs:
        assert get_annotated_labels(doc) == ["Chemical", "Disease"]
        assert get_corpus_name(doc) == "bc5cdr"
        assert DOC_ID_KEY not in doc.user_data


def test_iob_docstart_documents(tmp_path):
    text = tsv([
        "-DOCSTART- O", "",
        "IL-2 B-protein", "gene O", "", "T B-cell_type", "cells I-cell_type", "",
        "-DOCSTART- O", "",
        "NF-kB B-protein", "binds O", "",
    ])
    src = write(tmp_path, "devel.tsv", text)
    stats = convert_file(src, tmp_path / "d.spacy", "iob")
    assert (stats.documents, stats.sentences, stats.tokens) == (2, 3, 6)
    docs = read_docs(tmp_path / "d.spacy")
    assert all("-DOCSTART-" not in d.text for d in docs)
    ids = [d.user_data[DOC_ID_KEY] for d in docs]
    assert ids[0] == ids[1] != ids[2]
    assert ids[0] == "devel.tsv:1" and ids[2] == "devel.tsv:9"


def test_iob_repairs_i_tags(tmp_path):
    text = tsv([
        "a I-GENE",     # starts a mention: repair
        "b I-GENE",
        "c B-GENE",
        "d I-PROT",     # does not continue GENE: repair
        "e O",
        "f I-GENE",     # after O: repair
    ])
    src = write(tmp_path, "x.tsv", text)
    stats = convert_file(src, tmp_path / "x.spacy", "iob")
    assert stats.repairs == 3
    docs = read_docs(tmp_path / "x.spacy")
    assert spans_of(docs[0]) == [(0, 2, "GENE"), (2, 3, "GENE"), (3, 4, "PROT"), (5, 6, "GENE")]


def test_iob_to_mentions_label_map_before_continuation():
    tags = ["B-GENE", "I-PROT", "O"]
    assert iob_to_mentions(tags) == ([(0, 1, "GENE"), (1, 2, "PROT")], 1)
    mapped = {"GENE": "X", "PROT": "X"}
    assert iob_to_mentions(tags, mapped) == ([(0, 2, "X")], 0)


@pytest.mark.parametrize(
    "rows,line,needle",
    [
        (["a O", "b O", "c", "d O"], 3, "expected 2 tab-separated columns"),
        (["a\tO", "", "b\tO\tO"], 3, "expected 2 tab-separated columns"),
        (["a O", "b E-GENE"], 2, "invalid tag 'E-GENE'"),
        (["a O", "", "", "b B-"], 4, "invalid tag 'B-'"),
        (["a O", "b o"], 2, "invalid tag 'o'"),
    ],
)
def test_iob_malformed_lines(tmp_path, rows, line, needle):
    src = write(tmp_path, "bad.tsv", tsv(rows) if "\t" not in "".join(rows) else "\n".join(rows) + "\n")
    with pytest.raises(ConversionError) as err:
        convert_file(src, tmp_path / "bad.spacy", "iob")
    message = str(err.value)
    assert message.startswith(f"{src}:{line}: ")
    assert needle in message
    assert err.value.line == line and err.value.path == str(src)
    assert not (tmp_path / "bad.spacy").exists()


@pytest.mark.parametrize("text", ["", "\n\n", "-DOCSTART-\tO\n\n"])
def test_empty_input_is_an_error(tmp_path, text):
    src = write(tmp_path, "empty.tsv", text)
    with pytest.raises(ConversionError, match="empty.tsv: contains no sentences"):
        convert_file(src, tmp_path / "e.spacy", "iob")


def test_invalid_utf8_names_line(tmp_path):
    src = tmp_path / "latin.tsv"
    src.write_bytes(b"a\tO\n\xe9t\xe9\tO\n")
    with pytest.raises(ConversionError, match=r"latin.tsv:2: not valid UTF-8"):
        convert_file(src, tmp_path / "l.spacy", "iob")


def test_label_map_labels_and_limit(tmp_path):
    src = write(tmp_path, "t.tsv", IOB_TEXT)
    out = tmp_path / "t.spacy"
    stats = convert_file(
        src, out, "iob", label_map={"Disease": "DIS"}, labels=["Gene"], limit=2,
    )
    assert stats.truncated_from == 3 and stats.sentences == 2
    assert stats.entities == {"Chemical": 1, "DIS": 1}
    # annotated labels come from the whole file plus the explicit ones
    assert stats.labels == ["Chemical", "DIS", "Gene"]
    docs = read_docs(out)
    assert len(docs) == 2
    assert spans_of(docs[0]) == [(0, 1, "Chemical"), (3, 5, "DIS")]
    assert docs[0].user_data[ANNOTATED_LABELS_KEY] is not None
    assert get_annotated_labels(docs[1]) == ["Chemical", "DIS", "Gene"]


def test_custom_spans_key(tmp_path):
    src = write(tmp_path, "t.tsv", IOB_TEXT)
    convert_file(src, tmp_path / "t.spacy", "iob", spans_key="gold")
    doc = read_docs(tmp_path / "t.spacy")[0]
    assert "sru_ner" not in doc.spans
    assert spans_of(doc, "gold") == [(0, 1, "Chemical"), (3, 5, "Disease")]


# ---------------------------------------------------------------------------
# CoNLL-2003

CONLL_TEXT = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
1996-08-22 CD I-NP O
"""


def test_conll_round_trip(tmp_path):
    src = write(tmp_path, "valid.txt", CONLL_TEXT)
    stats = convert_file(src, tmp_path / "v.spacy", "conll")
    assert (stats.documents, stats.sentences, stats.tokens) == (2, 3, 9)
    assert stats.entities == {"ORG": 1, "MISC": 1, "PER": 1, "LOC": 1}
    docs = read_docs(tmp_path / "v.spacy")
    assert [t.text for t in docs[0]] == ["EU", "rejects", "German", "call", "."]
    assert spans_of(docs[0]) == [(0, 1, "ORG"), (2, 3, "MISC")]
    assert spans_of(docs[1]) == [(0, 2, "PER")] == ents_of(docs[1])
    assert get_annotated_labels(docs[2]) == ["LOC", "MISC", "ORG", "PER"]


def test_conll_wrong_column_count(tmp_path):
    text = CONLL_TEXT.replace("call NN I-NP O", "call NN O")
    src = write(tmp_path, "valid.txt", text)
    with pytest.raises(ConversionError) as err:
        convert_file(src, tmp_path / "v.spacy", "conll")
    assert str(err.value).startswith(f"{src}:6: expected 4 space-separated columns")
    assert "as on line 3" in str(err.value)


# ---------------------------------------------------------------------------
# GENIA JSON lines (nested)

GENIA_LINES = [
    {   # nested: protein inside cell_line; PBL separate
        "tokens": ["PHA", "activated", "blood", "lymphocytes", "(", "PBL", ")"],
        "doc_id": "MEDLINE:1", "sent_id": "MEDLINE:1-0",
        "entity_mentions": [
            {"start": 5, "end": 6, "entity_type": "cell_type", "text": "PBL"},
            {"start": 0, "end": 4, "entity_type": "cell_line", "text": "PHA activated blood lymphocytes"},
            {"start": 0, "end": 1, "entity_type": "protein", "text": "PHA"},
        ],
    },
    {   # overlapping but not nested, plus same boundaries with two labels
        "tokens": ["IL-2", "receptor", "alpha", "chain"],
        "doc_id": "MEDLINE:1", "sent_id": "MEDLINE:1-1",
        "entity_mentions": [
            {"start": 0, "end": 2, "entity_type": "protein", "text": "IL-2 receptor"},
            {"start": 1, "end": 4, "entity_type": "protein", "text": "receptor alpha chain"},
            {"start": 3, "end": 4, "entity_type": "DNA", "text": "chain"},
            {"start": 3, "end": 4, "entity_type": "RNA", "text": "chain"},
        ],
    },
    {   # flat
        "tokens": ["c-fos", "and", "jun", "B"],
        "doc_id": "MEDLINE:2", "sent_id": "MEDLINE:2-0",
        "entity_mentions": [
            {"start": 0, "end": 1, "entity_type": "DNA", "text": "c-fos"},
            {"start": 2, "end": 4, "entity_type": "DNA", "text": "jun B"},
        ],
    },
    {"tokens": ["No", "entity", "."], "doc_id": "MEDLINE:2", "sent_id": "MEDLINE:2-1", "entity_mentions": []},
]


def genia_text(lines=GENIA_LINES) -> str:
    return "\n".join(json.dumps(obj) for obj in lines) + "\n"


def test_genia_jsonl_nested_round_trip(tmp_path):
    src = write(tmp_path, "dev.jsonlines", genia_text())
    out = tmp_path / "dev.spacy"
    stats = convert_file(src, out, "genia", corpus_name="genia")
    assert (stats.documents, stats.sentences, stats.tokens) == (2, 4, 18)
    assert stats.entities == {"cell_type": 1, "cell_line": 1, "protein": 3, "DNA": 3, "RNA": 1}
    # PHA in "PHA activated..." and "chain" (DNA, RNA) inside "receptor alpha chain"
    assert stats.nested_inner == 3
    assert stats.read.overlapping_docs == 2
    docs = read_docs(out)
    assert spans_of(docs[0]) == [(0, 1, "protein"), (0, 4, "cell_line"), (5, 6, "cell_type")]
    assert ents_of(docs[0]) == []
    assert all(t.ent_iob_ == "" for t in docs[0])  # missing, not "O"
    assert spans_of(docs[1]) == [(0, 2, "protein"), (1, 4, "protein"), (3, 4, "DNA"), (3, 4, "RNA")]
    assert ents_of(docs[1]) == []
    assert ents_of(docs[2]) == spans_of(docs[2]) == [(0, 1, "DNA"), (2, 4, "DNA")]
    assert [d.user_data[DOC_ID_KEY] for d in docs] == ["MEDLINE:1", "MEDLINE:1", "MEDLINE:2", "MEDLINE:2"]
    for doc in docs:
        assert get_annotated_labels(doc) == ["DNA", "RNA", "cell_line", "cell_type", "protein"]


def test_genia_jsonl_keeps_tokens_with_spaces(tmp_path):
    line = {"tokens": ["HIV- 1", "LTR"], "doc_id": "d", "sent_id": "s",
            "entity_mentions": [{"start": 0, "end": 2, "entity_type": "DNA", "text": "HIV- 1 LTR"}]}
    src = write(tmp_path, "x.jsonl", json.dumps(line) + "\n")
    convert_file(src, tmp_path / "x.spacy")  # format detected from .jsonl
    doc = read_docs(tmp_path / "x.spacy")[0]
    assert [t.text for t in doc] == ["HIV- 1", "LTR"]
    assert spans_of(doc) == [(0, 2, "DNA")]


def _bad_mention(**changes) -> str:
    mention = {"start": 0, "end": 1, "entity_type": "DNA", "text": "c-fos"}
    mention.update(changes)
    obj = {"tokens": ["c-fos", "gene"], "entity_mentions": [mention]}
    return json.dumps(obj)


@pytest.mark.parametrize(
    "bad_line,needle",
    [
        ('{"tokens": ["a"], "entity_mentions": [', "invalid JSON"),
        ('["a", "b"]', "expected a JSON object"),
        ('{"entity_mentions": []}', "'tokens' is missing"),
        ('{"tokens": ["a", ""], "entity_mentions": []}', "token 1 is ''"),
        ('{"tokens": ["a"]}', "'entity_mentions' is missing"),
        (_bad_mention(end=3), "start=0, end=3, but the sentence has 2 tokens"),
        (_bad_mention(start=1, end=1), "start=1, end=1"),
        (_bad_mention(entity_type=""), "entity_type ''"),
        (_bad_mention(end=2), "does not match tokens[0:2]"),
    ],
)
def test_genia_jsonl_malformed(tmp_path, bad_line, needle):
    lines = [json.dumps(GENIA_LINES[2]), "", json.dumps(GENIA_LINES[3]), bad_line]
    src = write(tmp_path, "bad.jsonlines", "\n".join(lines) + "\n")
    with pytest.raises(ConversionError) as err:
        convert_file(src, tmp_path / "bad.spacy", "genia")
    assert str(err.value).startswith(f"{src}:4: ")
    assert needle in str(err.value)


# ---------------------------------------------------------------------------
# GENIA layered (Ju et al. .iob2)

LAYERED_TEXT = (
    "The\tO\tO\tO\tO\n"
    "IL\tB-protein\tB-DNA\tO\tO\n"
    "-\tI-protein\tI-DNA\tO\tO\n"
    "2\tI-protein\tI-DNA\tO\tO\n"
    "gene\tO\tI-DNA\tO\tO\n"
    "\n"
    "T\tB-cell_type\tB-cell_type\tO\tO\n"   # same span on two layers: deduplicated
    "cells\tI-cell_type\tI-cell_type\tO\tO\n"
)


def test_genia_layered_union(tmp_path):
    src = write(tmp_path, "genia.dev.iob2", LAYERED_TEXT)
    stats = convert_file(src, tmp_path / "l.spacy")  # detected from .iob2
    assert stats.fmt == "genia-layered"
    assert (stats.sentences, stats.tokens) == (2, 7)
    assert stats.entities == {"protein": 1, "DNA": 1, "cell_type": 1}
    assert stats.duplicates == 1 and stats.nested_inner == 1
    docs = read_docs(tmp_path / "l.spacy")
    assert spans_of(docs[0]) == [(1, 4, "protein"), (1, 5, "DNA")]
    assert ents_of(docs[0]) == []
    assert spans_of(docs[1]) == ents_of(docs[1]) == [(0, 2, "cell_type")]


def test_genia_layered_bad_tag_and_columns(tmp_path):
    src = write(tmp_path, "a.iob2", LAYERED_TEXT.replace("gene\tO\tI-DNA", "gene\tO\tX-DNA"))
    with pytest.raises(ConversionError, match=r"a.iob2:5: invalid tag 'X-DNA'"):
        convert_file(src, tmp_path / "a.spacy", "genia-layered")
    text = LAYERED_TEXT.replace("cells\tI-cell_type\tI-cell_type\tO\tO", "cells\tO\tO")
    src = write(tmp_path, "b.iob2", text)
    with pytest.raises(ConversionError, match=r"b.iob2:8: expected 5 tab-separated columns"):
        convert_file(src, tmp_path / "b.spacy", "genia-layered")


# ---------------------------------------------------------------------------
# GENIA MLC (one file per type, merged)

MLC_TOKENS = [["IL", "-", "2", "gene", "expression"], ["T", "cells", "respond"]]
MLC_TAGS = {
    "DNA": [["B-DNA", "I-DNA", "I-DNA", "I-DNA", "O"], ["O", "O", "O"]],
    "protein": [["B-protein", "I-protein", "I-protein", "O", "O"], ["O", "O", "O"]],
    "cell_type": [["O"] * 5, ["B-cell_type", "I-cell_type", "O"]],
}


def write_mlc(tmp_path: Path, split: str = "train", tokens=MLC_TOKENS) -> List[Path]:
    paths = []
    for label, tag_sents in MLC_TAGS.items():
        blocks = ["\n".join(f"{w} {t}" for w, t in zip(ws, ts)) for ws, ts in zip(tokens, tag_sents)]
        paths.append(write(tmp_path, f"{label}_{split}.conll", "\n\n".join(blocks)))
    return paths


def test_genia_mlc_merge_glob_and_list(tmp_path):
    paths = write_mlc(tmp_path)
    out = tmp_path / "m.spacy"
    stats = convert_file(str(tmp_path / "*_train.conll"), out, "genia-mlc")
    assert len(stats.inputs) == 3
    assert (stats.sentences, stats.tokens, stats.nested_inner) == (2, 8, 1)
    assert stats.entities == {"DNA": 1, "protein": 1, "cell_type": 1}
    docs = read_docs(out)
    assert spans_of(docs[0]) == [(0, 3, "protein"), (0, 4, "DNA")]
    assert spans_of(docs[1]) == ents_of(docs[1]) == [(0, 2, "cell_type")]
    # comma-separated list and a sequence give the same result
    stats2 = convert_file(",".join(map(str, paths)), tmp_path / "m2.spacy", "genia-mlc")
    stats3 = convert_file(paths, tmp_path / "m3.spacy")  # several inputs -> genia-mlc
    assert stats.read == stats2.read == stats3.read


def test_genia_mlc_token_mismatch(tmp_path):
    paths = write_mlc(tmp_path)
    bad = paths[2]  # cell_type_train.conll
    bad.write_text(bad.read_text().replace("cells B", "cells_ B").replace("cells I", "cells_ I"))
    with pytest.raises(ConversionError) as err:
        convert_file(paths, tmp_path / "m.spacy", "genia-mlc")
    message = str(err.value)
    assert message.startswith(f"{bad}:8: token 'cells_' differs from 'cells' at {paths[0]}:8")
    assert "identical tokens" in message


def test_genia_mlc_sentence_count_mismatch(tmp_path):
    paths = write_mlc(tmp_path)
    paths[1].write_text(paths[1].read_text() + "\n\nextra O\n")
    with pytest.raises(ConversionError) as err:
        convert_file(paths, tmp_path / "m.spacy", "genia-mlc")
    assert str(err.value).startswith(f"{paths[1]}:11: sentence 3 has no counterpart in {paths[0]}")


def test_genia_mlc_sentence_length_mismatch(tmp_path):
    paths = write_mlc(tmp_path)
    paths[1].write_text(paths[1].read_text().replace("expression O\n", ""))
    needle = r"protein_train.conll:4: sentence starting on line 1 has 4 tokens"
    with pytest.raises(ConversionError, match=needle):
        convert_file(paths, tmp_path / "m.spacy", "genia-mlc")


# ---------------------------------------------------------------------------
# PubTator

TITLE = "Aspirin-induced asthma in patients."
ABSTRACT = "We studied aspirin. It caused severe asthma attacks. Done."
PUBTATOR_TEXT = "\n".join([
    f"100|t|{TITLE}",                                  # 1
    f"100|a|{ABSTRACT}",                               # 2
    "100\t0\t7\tAspirin\tChemical\tD001241",           # 3
    "100\t0\t22\tAspirin-induced asthma\tDisease\tD1",  # 4
    "100\t26\t34\tpatients\tSpecies\t9606",            # 5
    "100\t47\t54\taspirin\tChemical\tD001241",         # 6
    "100\t50\t65\tirin. It caused\tEvent\t-",          # 7 realigned + crosses a sentence boundary
    "100\tCID\tD001241\tD1",                           # 8 relation
    "",                                                # 9
    "200|t|Nothing here.",                             # 10
    "200|a|",                                          # 11
    "",
])


def test_pubtator_document_level(tmp_path):
    src = write(tmp_path, "cdr.pubtator", PUBTATOR_TEXT)
    out = tmp_path / "p.spacy"
    stats = convert_file(src, out)  # detected from the extension
    assert stats.fmt == "pubtator"
    assert (stats.documents, stats.read.docs, stats.sentences) == (2, 2, 5)
    assert stats.realigned == 1 and stats.skipped_relations == 1
    assert stats.entities == {"Chemical": 2, "Disease": 1, "Species": 1, "Event": 1}
    docs = read_docs(out)
    assert docs[0].text == f"{TITLE} {ABSTRACT}"
    assert [s.text for s in docs[0].sents][0] == "Aspirin-induced asthma in patients."
    found = [(docs[0][s:e].text, label) for s, e, label in spans_of(docs[0])]
    assert found == [
        ("Aspirin", "Chemical"), ("Aspirin-induced asthma", "Disease"), ("patients", "Species"),
        ("aspirin", "Chemical"), ("aspirin. It caused", "Event"),
    ]
    assert ents_of(docs[0]) == []  # nested/overlapping
    assert docs[0].user_data[DOC_ID_KEY] == "100"
    assert spans_of(docs[1]) == [] and all(t.ent_iob_ == "O" for t in docs[1])


def test_pubtator_split_sentences_keeps_crossing_mentions(tmp_path):
    src = write(tmp_path, "cdr.txt", PUBTATOR_TEXT)
    out = tmp_path / "p.spacy"
    stats = convert_file(src, out, "pubtator", split_sentences=True)
    assert stats.sentences == 5 and stats.read.docs == 4
    assert stats.crossing == 1 and stats.merged_sentences == 1
    assert stats.mentions == 5
    docs = read_docs(out)
    assert [d.text.strip() for d in docs] == [
        TITLE, "We studied aspirin. It caused severe asthma attacks.", "Done.", "Nothing here.",
    ]
    assert [(docs[1][s:e].text, label) for s, e, label in spans_of(docs[1])] == [
        ("aspirin", "Chemical"), ("aspirin. It caused", "Event"),
    ]
    assert len(list(docs[1].sents)) == 2
    assert spans_of(docs[2]) == ents_of(docs[2]) == []


@pytest.mark.parametrize(
    "old,new,line,needle",
    [
        ("100\t26\t34\tpatients", "100\t25\t33\tpatients", 5, "does not match the text at 25-33"),
        ("100\t47\t54\taspirin", "100\t47\t999\taspirin", 6, "outside the text"),
        ("100\t0\t7\tAspirin", "101\t0\t7\tAspirin", 3, "annotation for 101 inside document 100"),
        ("100\t0\t7\tAspirin\tChemical", "100\tx\t7\tAspirin\tChemical", 3, "not a title, abstract"),
        ("200|a|", "300|a|", 11, "does not follow the title line"),
    ],
)
def test_pubtator_malformed(tmp_path, old, new, line, needle):
    assert old in PUBTATOR_TEXT
    src = write(tmp_path, "bad.pubtator", PUBTATOR_TEXT.replace(old, new))
    with pytest.raises(ConversionError) as err:
        convert_file(src, tmp_path / "bad.spacy", "pubtator")
    assert str(err.value).startswith(f"{src}:{line}: ")
    assert needle in str(err.value)


# ---------------------------------------------------------------------------
# Realistic sample (JNLPBA-style .tsv, ~200 lines, crafted here)

SAMPLE_SENTENCES = [
    "Disruption of the [human SCL locus|DNA] by `` illegitimate '' V- ( D ) -J recombinase activity .",
    "A fusion [complementary DNA|DNA] in the [T cell line|cell_line] [Jurkat|cell_line] was cloned .",
    "[IL-2|protein] [gene|I-DNA] expression requires [NF-kappa B|protein] in [activated T cells|cell_type] .",
    "The [CD28 surface receptor|protein] signals through [PI 3-kinase|protein] ; see [Fig.|O] 2 .",
    "[Glucocorticoid receptor|protein] [mRNA|RNA] levels fell in [human monocytes|cell_type] .",
    "We observed no change in [c-fos|DNA] , [c-jun|DNA] or [jun B|DNA] [mRNA|I-RNA] after 30 min .",
]


def sample_lines(n_docs: int) -> Tuple[str, dict, int, int]:
    """Build a JNLPBA-style file; return (text, expected counts, sentences, tokens)."""
    lines: List[str] = []
    expected: dict = {}
    n_sents = n_tokens = 0
    for d in range(n_docs):
        lines += ["-DOCSTART-\tO", ""]
        for sentence in SAMPLE_SENTENCES[d % 3: d % 3 + 4]:
            n_sents += 1
            for chunk in sentence.replace("[", "\x00[").replace("]", "]\x00").split("\x00"):
                if chunk.startswith("["):
                    words, label = chunk[1:-1].rsplit("|", 1)
                    for i, word in enumerate(words.split()):
                        if label == "O":
                            tag = "O"
                        elif label.startswith("I-"):  # an I- tag that starts a mention
                            tag = label
                            if i == 0:
                                expected[label[2:]] = expected.get(label[2:], 0) + 1
                        else:
                            tag = ("B-" if i == 0 else "I-") + label
                            if i == 0:
                                expected[label] = expected.get(label, 0) + 1
                        lines.append(f"{word}\t{tag}")
                        n_tokens += 1
                else:
                    for word in chunk.split():
                        lines.append(f"{word}\tO")
                        n_tokens += 1
            lines.append("")
    return "\n".join(lines) + "\n", expected, n_sents, n_tokens


def test_realistic_jnlpba_sample(tmp_path):
    text, expected, n_sents, n_tokens = sample_lines(n_docs=4)
    assert 150 <= text.count("\n") <= 260
    src = write(tmp_path, "devel.tsv", text)
    stats = convert_file(src, tmp_path / "devel.spacy", corpus_name="JNLPBA")
    assert stats.fmt == "iob"
    assert (stats.documents, stats.sentences, stats.tokens) == (4, n_sents, n_tokens)
    assert dict(stats.entities) == expected
    assert stats.repairs == sum(s.count("|I-") for d in range(4) for s in SAMPLE_SENTENCES[d % 3: d % 3 + 4])
    docs = read_docs(tmp_path / "devel.spacy")
    assert docs[0].text.startswith("Disruption of the human SCL locus by `` illegitimate ''")
    assert [(docs[0][s:e].text, label) for s, e, label in spans_of(docs[0])] == [("human SCL locus", "DNA")]
    assert len({d.user_data[DOC_ID_KEY] for d in docs}) == 4
    assert all(get_corpus_name(d) == "JNLPBA" for d in docs)


# ---------------------------------------------------------------------------
# Inputs, format detection, in-memory conversion, verification


def test_detect_format_and_inputs(tmp_path):
    assert detect_format([write(tmp_path, "a.tsv", "a\tO\n")]) == "iob"
    assert detect_format([write(tmp_path, "a.jsonlines", "{}\n")]) == "genia"
    assert detect_format([write(tmp_path, "a.iob2", "a\tO\tO\n")]) == "genia-layered"
    assert detect_format([write(tmp_path, "a.txt", CONLL_TEXT)]) == "conll"
    assert detect_format([write(tmp_path, "b.txt", PUBTATOR_TEXT)]) == "pubtator"
    with pytest.raises(ConversionError, match="cannot detect the format"):
        detect_format([write(tmp_path, "a.dat", "a b\n")])
    with pytest.raises(ConversionError, match="no file matches this pattern"):
        resolve_inputs(str(tmp_path / "*.none"))
    with pytest.raises(ConversionError, match="file not found"):
        resolve_inputs(str(tmp_path / "missing.tsv"))
    two = [write(tmp_path, "x.tsv", "a\tO\n"), write(tmp_path, "y.tsv", "a\tO\n")]
    with pytest.raises(ConversionError, match="takes one input file, got 2"):
        convert_file(two, tmp_path / "o.spacy", "iob")


def test_corpus_to_docs_in_memory(tmp_path):
    src = write(tmp_path, "dev.jsonlines", genia_text())
    docs = corpus_to_docs(src, "genia", labels=["Extra"], corpus_name="g")
    assert len(docs) == 4
    assert spans_of(docs[2]) == ents_of(docs[2])
    assert get_annotated_labels(docs[0]) == ["DNA", "Extra", "RNA", "cell_line", "cell_type", "protein"]


def test_verification_catches_a_mismatch(tmp_path, monkeypatch):
    from spacy_sru_ner.convert import common

    corpus = ParsedCorpus(paths=["x"], docs=[ParsedDoc(words=["a", "b"], mentions=[(0, 1, "X")], line=1)])
    real_count = common.count_docs

    def lossy(docs, key):
        counts = real_count(docs, key)
        counts.tokens -= 1
        return counts

    monkeypatch.setattr(common, "count_docs", lossy)
    with pytest.raises(ConversionError, match="the written file does not match the input"):
        write_corpus(corpus, tmp_path / "o.spacy", "iob")
    assert not (tmp_path / "o.spacy").exists()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.sampled_from(["O", "B-A", "I-A", "B-B", "I-B"]), min_size=1, max_size=12
    )
)
def test_iob_decoding_property(tags):
    mentions, repairs = iob_to_mentions(tags)
    # mentions cover exactly the tagged tokens, in order, without overlap
    covered = [i for s, e, _ in mentions for i in range(s, e)]
    assert covered == [i for i, t in enumerate(tags) if t != "O"]
    assert not has_overlap(mentions)
    assert repairs == sum(
        1 for i, t in enumerate(tags)
        if t.startswith("I-") and (i == 0 or tags[i - 1] == "O" or tags[i - 1][2:] != t[2:])
    )
    for s, e, label in mentions:
        assert all(t[2:] == label for t in tags[s:e])


@settings(max_examples=25, deadline=None)
@given(
    st.integers(min_value=1, max_value=8).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(
                st.tuples(st.integers(0, n - 1), st.integers(1, n), st.sampled_from(["A", "B", "C"])),
                max_size=6,
            ),
        )
    )
)
def test_nested_round_trip_property(tmp_path_factory, case):
    n, raw = case
    mentions = sorted({(min(s, e - 1), max(s + 1, e), label) for s, e, label in raw})
    corpus = ParsedCorpus(
        paths=["mem"], docs=[ParsedDoc(words=[f"w{i}" for i in range(n)], mentions=mentions, line=1)]
    )
    out = tmp_path_factory.mktemp("prop") / "p.spacy"
    stats = write_corpus(corpus, out, "genia")
    doc = read_docs(out)[0]
    assert spans_of(doc) == mentions
    assert ents_of(doc) == ([] if has_overlap(mentions) else mentions)
    assert stats.nested_inner == count_nested_inner(mentions)


# ---------------------------------------------------------------------------
# CLI

runner = CliRunner()


def test_cli_convert_prints_counts(tmp_path):
    src = write(tmp_path, "train.tsv", IOB_TEXT)
    out = tmp_path / "train.spacy"
    result = runner.invoke(
        app,
        ["convert", str(src), str(out), "--format", "iob", "--corpus", "cdr",
         "--label-map", "Disease=DIS", "--labels", "Gene,Species"],
    )
    assert result.exit_code == 0, result.output
    assert "read" in result.output and "written" in result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.output.splitlines() if line.split()}
    assert rows["sentences"] == ["3", "3"]
    assert rows["tokens"] == ["12", "12"]
    assert rows["mentions"] == ["3", "3"]
    assert rows["DIS"] == ["2", "2"]
    assert "annotated labels: Chemical, DIS, Gene, Species" in result.output
    docs = read_docs(out)
    assert get_corpus_name(docs[0]) == "cdr"


def test_cli_limit_reports_truncation(tmp_path):
    src = write(tmp_path, "train.tsv", IOB_TEXT)
    result = runner.invoke(app, ["convert", str(src), str(tmp_path / "o.spacy"), "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert "first 1 of 3 Docs" in result.output


def test_cli_malformed_input_exit_1(tmp_path):
    src = write(tmp_path, "bad.tsv", tsv(["a O", "b B-GENE", "c X-GENE"]))
    result = runner.invoke(app, ["convert", str(src), str(tmp_path / "o.spacy")])
    assert result.exit_code == 1
    assert f"{src}:3: invalid tag 'X-GENE'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o.spacy").exists()


def test_cli_bad_label_map(tmp_path):
    src = write(tmp_path, "train.tsv", IOB_TEXT)
    result = runner.invoke(app, ["convert", str(src), str(tmp_path / "o.spacy"), "--label-map", "GENE"])
    assert result.exit_code == 2
    assert "OLD=NEW" in result.output


def test_cli_genia_mlc_glob(tmp_path):
    write_mlc(tmp_path, "dev")
    result = runner.invoke(
        app, ["convert", str(tmp_path / "*_dev.conll"), str(tmp_path / "dev.spacy"), "-f", "genia-mlc"]
    )
    assert result.exit_code == 0, result.output
    assert "nested-inner mentions" in result.output


def test_python_dash_m_entry_point(tmp_path):
    src = write(tmp_path, "bad.tsv", tsv(["a O", "b"]))
    proc = subprocess.run(
        [sys.executable, "-m", "spacy_sru_ner", "convert", str(src), str(tmp_path / "o.spacy")],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], timeout=60,
    )
    assert proc.returncode == 1
    assert f"{src}:2: expected 2 tab-separated columns" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
