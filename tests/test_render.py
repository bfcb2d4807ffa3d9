"""The displaCy page of `render`: passages of test sentences, predicted spans with scores above the gold ones."""
import re
import subprocess
import sys

from spacy.tokens import DocBin

from spacy_sru_ner.render import passages, render_page

from conftest import nested_docs, train_nlp


def test_passages_keep_gold_spans():
    docs = nested_docs(5)
    (first, second) = passages(docs, sentences=3, limit=5, spans_key="sru_ner")
    assert first.text.startswith(docs[0].text) and docs[2].text in first.text
    gold = [(s.text, s.label_) for d in docs[:3] for s in d.spans["sru_ner"]]
    assert sorted((s.text, s.label_) for s in first.spans["sru_ner"]) == sorted(gold)
    assert second.text.startswith(docs[3].text) and second.text.endswith(docs[4].text.rstrip())
    assert passages(docs, sentences=3, limit=1, spans_key="sru_ner")[0].text == first.text


def test_render_page_and_cli(tmp_path):
    docs = nested_docs(4)
    nlp, _, _ = train_nlp(docs, n_iter=100, target_f=0.5)
    data = tmp_path / "genia_demo" / "test.spacy"
    data.parent.mkdir()
    DocBin(docs=docs, store_user_data=True).to_disk(data)
    html = render_page(nlp, [data], n_passages=1, sentences=2)
    assert html.count("passage 1: gold (test.spacy)") == 1 and html.count("passage 1: ") == 2
    for span in list(docs[0].spans["sru_ner"]) + list(docs[1].spans["sru_ner"]):
        assert span.label_ in html
    assert re.search(r"(DNA|RNA|protein|cell_line|cell_type) 0\.\d\d", html), "no scored predicted span"
    model = tmp_path / "model"
    nlp.to_disk(model)
    out = tmp_path / "page.html"
    result = subprocess.run([sys.executable, "-m", "spacy_sru_ner", "render", str(model), str(data),
                             "--output", str(out), "--passages", "1", "--sentences", "2"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.read_text().count("passage 1: ") == 2
