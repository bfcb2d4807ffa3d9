"""``python -m spacy_sru_ner annotate``: JSONL/PubTator in and out, bad lines, resuming, n_process."""
import json
from pathlib import Path

import pytest
import spacy
from typer.testing import CliRunner

from conftest import nested_docs, train_nlp
from spacy_sru_ner.annotate import AnnotateError, annotate_file, read_output
from spacy_sru_ner.cli import app
from spacy_sru_ner.convert.pubtator import read_pubtator as convert_pubtator
from spacy_sru_ner.demo import load_demo_docs

runner = CliRunner()


def build_model(path: Path) -> Path:
    """A small sru_ner pipeline that finds some entities (not a good model: quick)."""
    nlp, _, _ = train_nlp(nested_docs(20), n_iter=60, target_f=0.3)
    nlp.get_pipe("sru_ner").cfg["threshold"] = 0.3
    nlp.to_disk(path)
    return path


def demo_texts(n: int = 24):
    texts = [doc.text for doc in load_demo_docs("train")[:n]]
    # odd characters and whitespace before entities, a line break, a long document (windowed)
    texts[1] = "  Ünïcödé 🙂\n" + texts[1]
    texts[2] = texts[2].replace(" ", "  ", 3) + "\r\nSecond line\tafter a tab."
    texts.append(" ".join(doc.text for doc in load_demo_docs("train")[:20]))
    return texts


def write_jsonl(path: Path, rows) -> Path:
    with path.open("w", encoding="utf-8") as file_:
        for row in rows:
            file_.write((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n")
    return path


def by_id(rows):
    return {str(row["id"]): row for row in rows}


def assert_same_entities(a, b):
    """Same spans and labels; scores equal up to float noise."""
    assert a.keys() == b.keys()
    for key in a:
        ea, eb = a[key]["entities"], b[key]["entities"]
        assert [(e["start"], e["end"], e["label"], e["text"]) for e in ea] == [
            (e["start"], e["end"], e["label"], e["text"]) for e in eb
        ], key
        assert [e["score"] for e in ea] == pytest.approx([e["score"] for e in eb], abs=2e-4)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_model(tmp_path_factory.mktemp("annotate") / "model")


@pytest.fixture(scope="module")
def nlp(model_dir):
    return spacy.load(model_dir)


@pytest.fixture(scope="module")
def texts():
    return demo_texts()


@pytest.fixture(scope="module")
def reference(nlp, texts, tmp_path_factory):
    """(input path, output path, rows) of a plain single-process JSONL run."""
    folder = tmp_path_factory.mktemp("reference")
    src = write_jsonl(folder / "in.jsonl", [{"id": f"doc{i}", "text": t} for i, t in enumerate(texts)])
    out = folder / "out.jsonl"
    stats = annotate_file(nlp, src, out, include_text=True, progress=False, batch_size=8)
    assert (stats.read, stats.annotated, stats.done, stats.bad) == (len(texts), len(texts), 0, 0)
    return src, out, read_output(out)


def test_jsonl_output_matches_pipeline_and_offsets_round_trip(nlp, texts, reference):
    _, _, rows = reference
    assert [row["id"] for row in rows] == [f"doc{i}" for i in range(len(texts))]
    assert sum(len(row["entities"]) for row in rows) >= 10
    labels = set(nlp.get_pipe("sru_ner").labels)
    for row, text, doc in zip(rows, texts, nlp.pipe(texts)):
        assert row["text"] == text
        spans = doc.spans["sru_ner"]
        expected = sorted(
            (s.start_char, s.end_char, s.label_, float(score)) for s, score in zip(spans, spans.attrs["scores"])
        )
        got = sorted((e["start"], e["end"], e["label"], e["score"]) for e in row["entities"])
        assert [g[:3] for g in got] == [e[:3] for e in expected]
        assert [g[3] for g in got] == pytest.approx([e[3] for e in expected], abs=1e-4)
        for ent in row["entities"]:
            assert text[ent["start"]:ent["end"]] == ent["text"]
            assert ent["label"] in labels and 0.0 <= ent["score"] <= 1.0
    # the long document (windowed by the component) has entities after its first window
    long_row = rows[-1]
    assert len(nlp.make_doc(texts[-1])) > nlp.get_pipe("sru_ner").cfg["max_length"]
    first_window_end = nlp.make_doc(texts[-1])[nlp.get_pipe("sru_ner").cfg["max_length"] - 1].idx
    assert any(ent["start"] > first_window_end for ent in long_row["entities"])


def test_cli_jsonl_with_custom_fields(model_dir, texts, reference, tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"pmid": i, "body": t, "other": [1]} for i, t in enumerate(texts)])
    out = tmp_path / "sub" / "out.jsonl"
    result = runner.invoke(
        app,
        ["annotate", str(model_dir), str(src), str(out), "--id-field", "pmid", "--text-field", "body",
         "--batch-size", "4"],
    )
    assert result.exit_code == 0, result.output
    assert f"read {len(texts)}, annotated {len(texts)}" in result.stdout and "bad 0" in result.stdout
    assert "100%" in result.stderr  # the progress bar
    rows = read_output(out)
    assert [row["id"] for row in rows] == list(range(len(texts)))
    assert all("text" not in row for row in rows)  # only with --include-text
    expected = {str(i): row for i, row in enumerate(reference[2])}
    assert_same_entities(by_id(rows), expected)


PUBTATOR = """\
100|t|{t0}
100|a|{a0}
100\t0\t4\tsome\tGene\tX:1
100\tCID\tD1\tD2

200|t|{t1}
200|a|{a1}

300|t|{t2}
"""


def test_pubtator_in_and_out(nlp, texts, tmp_path):
    titles, abstracts = [texts[0], texts[3], texts[4]], [texts[5], "\t" + texts[6], None]
    src = tmp_path / "in.pubtator"
    src.write_text(PUBTATOR.format(t0=titles[0], a0=abstracts[0], t1=titles[1], a1=abstracts[1], t2=titles[2]))
    full = [t if a is None else f"{t} {a}" for t, a in zip(titles, abstracts)]
    # PubTator -> PubTator
    out = tmp_path / "out.pubtator"
    stats = annotate_file(nlp, src, out, input_format="pubtator", output_format="pubtator", progress=False)
    assert (stats.read, stats.annotated, stats.bad) == (3, 3, 0)
    written = out.read_text()
    assert written.startswith(f"100|t|{titles[0]}\n100|a|{abstracts[0]}\n")
    assert "\tGene\t" not in written and "CID" not in written  # input annotations are not copied
    rows = read_output(out, "pubtator")
    assert [row["id"] for row in rows] == ["100", "200", "300"]
    assert [row["text"] for row in rows] == [
        full[0], full[1].replace("\t", " "), full[2] + " "  # tabs as spaces; no abstract: an empty one
    ]
    for row in rows:
        for ent in row["entities"]:
            assert row["text"][ent["start"]:ent["end"]] == ent["text"]
    for line in written.splitlines():
        if "\t" in line and "|" not in line.split("\t")[0]:
            pmid, start, end, mention, label, score = line.split("\t")
            assert 0.0 <= float(score) <= 1.0 and len(score.split(".")[1]) == 4
    # the project's own PubTator converter reads the output (it checks every mention against the text)
    assert len(convert_pubtator(out).docs) == 3
    # PubTator -> JSONL: same entities, offsets into title + " " + abstract
    out_jsonl = tmp_path / "out.jsonl"
    annotate_file(nlp, src, out_jsonl, input_format="pubtator", include_text=True, progress=False)
    rows_jsonl = read_output(out_jsonl)
    assert [row["text"] for row in rows_jsonl] == full
    for row in rows_jsonl:  # PubTator mentions have tabs and line breaks as spaces
        for ent in row["entities"]:
            ent["text"] = ent["text"].replace("\t", " ")
    assert_same_entities(by_id(rows_jsonl), by_id(rows))
    # JSONL with line breaks and tabs -> PubTator: breaks become spaces, offsets unchanged
    src_jsonl = write_jsonl(tmp_path / "breaks.jsonl", [{"id": 7, "text": texts[2]}, {"id": 8, "text": texts[1]}])
    out2 = tmp_path / "breaks.pubtator"
    annotate_file(nlp, src_jsonl, out2, output_format="pubtator", progress=False)
    assert len(out2.read_text().split("\n\n")) == 3  # two documents and the trailing ""
    rows2 = read_output(out2, "pubtator")
    for row, text in zip(rows2, [texts[2], texts[1]]):
        one_line = text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
        assert row["text"] == one_line + " "
        for ent in row["entities"]:
            assert one_line[ent["start"]:ent["end"]] == ent["text"]
    assert len(convert_pubtator(out2).docs) == 2


def test_bad_lines_reported_with_line_numbers_and_skipped(model_dir, texts, tmp_path):
    lines = [
        {"id": "a", "text": texts[0]},  # 1
        '{"id": "b", "text": ',  # 2 invalid JSON
        {"text": texts[1]},  # 3 missing id
        {"id": "c", "text": 42},  # 4 text not a string
        "",  # 5 blank: ignored, not counted
        {"id": "d", "text": texts[2]},  # 6
        {"id": "a", "text": texts[3]},  # 7 duplicate id
        "[1, 2]",  # 8 not an object
        {"id": True, "text": texts[4]},  # 9 bad id type
        {"id": "e"},  # 10 missing text
        {"id": 5, "text": ""},  # 11 empty text: fine, no entities
    ]
    src = write_jsonl(tmp_path / "in.jsonl", lines)
    with src.open("ab") as file_:
        file_.write(b'{"id": "f", "text": "caf\xe9"}\n')  # 12 not UTF-8
        file_.write(json.dumps({"id": "g", "text": texts[5]}).encode() + b"\n")  # 13
        file_.write(json.dumps({"id": "long", "text": "x " * 600}).encode() + b"\n")  # 14 over --max-chars
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["annotate", str(model_dir), str(src), str(out), "--no-progress",
                                 "--max-chars", "1000"])
    assert result.exit_code == 0, result.output
    err = result.stderr
    for lineno, what in [(2, "invalid JSON"), (3, 'missing "id"'), (4, '"text" must be a string'),
                         (7, "duplicate id 'a' (first on line 1)"), (8, "expected a JSON object"),
                         (9, '"id" must be a string or an integer'), (10, 'missing "text"'), (12, "not valid UTF-8"),
                         (14, "text of 'long' has 1200 characters, more than nlp.max_length (1000)")]:
        assert f"in.jsonl:{lineno}: {what}" in err, (lineno, err)
    assert ":5:" not in err and ":1:" not in err and ":6:" not in err
    assert "read 13, annotated 4" in result.stdout and "bad 9" in result.stdout
    assert "9 bad input record(s) skipped" in result.stdout
    rows = read_output(out)
    assert [row["id"] for row in rows] == ["a", "d", 5, "g"]
    assert rows[2]["entities"] == []


def test_bad_pubtator_lines(nlp, texts, tmp_path):
    src = tmp_path / "in.pubtator"
    src.write_text(
        f"stray line\n\n"  # 1 outside a document
        f"1|t|{texts[0]}\n1|a|{texts[3]}\n2|a|oops\nnot an annotation\n\n"  # 5 wrong abstract, 6 bad line
        f"2|t|{texts[4]}\n\n"
        f"1|t|{texts[5]}\n"  # 10 duplicate id
    )
    out = tmp_path / "out.pubtator"
    messages = []
    stats = annotate_file(nlp, src, out, input_format="pubtator", output_format="pubtator", progress=False,
                          log=messages.append)
    assert (stats.annotated, stats.bad) == (2, 4)
    text = "\n".join(messages)
    for lineno, what in [(1, "line outside a document"), (5, "abstract line for 2 does not follow"),
                         (6, "not a title, abstract, annotation or relation line of document 1")]:
        assert f"in.pubtator:{lineno}: {what}" in text
    assert "duplicate id '1' (first on line 3)" in text
    assert [row["id"] for row in read_output(out, "pubtator")] == ["1", "2"]


@pytest.mark.parametrize("output_format", ["jsonl", "pubtator"])
def test_resume_adds_only_missing_ids(nlp, reference, tmp_path, output_format):
    src, _, _ = reference
    full = tmp_path / f"full.{output_format}"
    annotate_file(nlp, src, full, output_format=output_format, progress=False)
    complete = full.read_bytes()
    n = len(read_output(full, output_format))
    # a killed run: the first 7 documents, then half a record
    if output_format == "jsonl":
        records = complete.split(b"\n")
        partial = b"\n".join(records[:7]) + b"\n" + records[7][: len(records[7]) // 2]
    else:
        records = complete.split(b"\n\n")
        partial = b"\n\n".join(records[:7]) + b"\n\n" + records[7][:20]
    out = tmp_path / f"out.{output_format}"
    out.write_bytes(partial)
    messages = []
    stats = annotate_file(nlp, src, out, output_format=output_format, progress=False, log=messages.append)
    assert (stats.in_output_before, stats.done, stats.annotated, stats.bad) == (7, 7, n - 7, 0)
    assert stats.truncated_bytes > 0 and "removed an incomplete last record" in messages[0]
    assert out.read_bytes() == complete  # nothing duplicated, nothing lost, same order
    ids = [row["id"] for row in read_output(out, output_format)]
    assert len(ids) == len(set(ids)) == n
    # a finished output: nothing to do
    stats = annotate_file(nlp, src, out, output_format=output_format, progress=False)
    assert (stats.done, stats.annotated) == (n, 0)
    assert out.read_bytes() == complete


def test_resume_via_cli_reports_done(model_dir, reference, tmp_path):
    src, ref_out, _ = reference
    out = tmp_path / "out.jsonl"
    lines = ref_out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:5]))
    result = runner.invoke(app, ["annotate", str(model_dir), str(src), str(out), "--no-progress", "--include-text"])
    assert result.exit_code == 0, result.output
    assert "skipped as done 5" in result.stdout and "resumed: 5 documents" in result.stdout
    assert out.read_text().splitlines()[:5] == [line.rstrip("\n") for line in lines[:5]]
    assert_same_entities(by_id(read_output(out)), by_id(read_output(ref_out)))


def test_corrupt_existing_output_stops(model_dir, reference, tmp_path):
    src = reference[0]
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "doc0", "entities": []}\nnot json\n{"id": "doc1", "entities": []}\n')
    result = runner.invoke(app, ["annotate", str(model_dir), str(src), str(out), "--no-progress"])
    assert result.exit_code == 1
    assert "out.jsonl:2:" in result.stderr and "not an annotate result" in result.stderr


def test_n_process_2_equals_1(nlp, reference, tmp_path):
    src, ref_out, ref_rows = reference
    out = tmp_path / "out.jsonl"
    stats = annotate_file(nlp, src, out, n_process=2, batch_size=4, include_text=True, progress=False)
    assert stats.annotated == len(ref_rows)
    rows = read_output(out)
    assert [row["id"] for row in rows] == [row["id"] for row in ref_rows]
    assert_same_entities(by_id(rows), by_id(ref_rows))


def test_errors(model_dir, nlp, reference, tmp_path):
    src = reference[0]
    result = runner.invoke(app, ["annotate", str(tmp_path / "nope"), str(src), str(tmp_path / "o.jsonl")])
    assert result.exit_code == 1 and "cannot load the model" in result.stderr
    result = runner.invoke(app, ["annotate", str(model_dir), str(tmp_path / "missing.jsonl"), str(tmp_path / "o.jsonl")])
    assert result.exit_code == 1 and "input file not found" in result.stderr
    with pytest.raises(AnnotateError, match="wrote no doc.spans\\['other'\\]"):
        annotate_file(nlp, src, tmp_path / "o.jsonl", spans_key="other", progress=False)
    with pytest.raises(AnnotateError, match="is the input file"):
        annotate_file(nlp, src, src, progress=False)


def test_progress_bar_and_bad_message_cap(nlp, texts, tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", ["{bad"] * 60 + [{"id": 1, "text": texts[0]}])
    stats = annotate_file(nlp, src, tmp_path / "out.jsonl", progress=True)
    assert (stats.read, stats.annotated, stats.bad, len(stats.bad_messages)) == (61, 1, 60, 50)
    err = capsys.readouterr().err
    assert "in.jsonl: 100%" in err and "61/61" in err  # the tqdm bar
    assert err.count("invalid JSON") == 50 and "further bad lines" in err and "in.jsonl:50:" in err
