"""A displaCy page of a model's spans next to the gold ones, for a look at the output.

    python -m spacy_sru_ner render MODEL corpus/bc5cdr/test.spacy ... --output page.html --passages 3

Consecutive sentences of each test file are joined into passages of about an
abstract's length (``--sentences``); the model annotates the passage text as a
user's text would be, and the page shows its spans (with scores in the span
labels) above the gold spans of the same passage.
"""
from pathlib import Path
from typing import List, Optional, Sequence, Union

from spacy import displacy
from spacy.language import Language
from spacy.tokens import Doc

from .contract import DEFAULT_SPANS_KEY, gold_spans
from .evaluate import load_eval_examples, model_label_settings

PathLike = Union[str, Path]


def passages(docs: Sequence[Doc], sentences: int, limit: int, spans_key: str) -> List[Doc]:
    """Up to ``limit`` docs of ``sentences`` consecutive docs each, gold spans kept."""
    out: List[Doc] = []
    for start in range(0, len(docs), sentences):
        if len(out) >= limit:
            break
        chunk = [doc.copy() for doc in docs[start : start + sentences]]
        for doc in chunk:
            doc.spans[spans_key] = gold_spans(doc, spans_key)
            doc.user_data.clear()  # corpus metadata: not merged by Doc.from_docs
        out.append(Doc.from_docs(chunk, ensure_whitespace=True))
    return out


def render_page(
    nlp: Language,
    paths: Sequence[PathLike],
    *,
    spans_key: str = DEFAULT_SPANS_KEY,
    n_passages: int = 3,
    sentences: int = 10,
) -> str:
    """The HTML page: per file, ``n_passages`` passages, predicted then gold."""
    label_maps, prefix, _ = model_label_settings(nlp)
    shown: List[Doc] = []
    for path in paths:
        for corpus, examples in load_eval_examples(
            nlp, path, spans_key=spans_key, corpus_label_maps=label_maps, prefix_labels=prefix
        ).items():
            gold_docs = [eg.reference for eg in examples]
            for i, gold in enumerate(passages(gold_docs, sentences, n_passages, spans_key)):
                predicted = nlp(gold.text)
                spans = predicted.spans.get(spans_key, [])
                scores = spans.attrs.get("scores") if hasattr(spans, "attrs") else None
                if scores is not None:
                    predicted.spans[spans_key] = [
                        predicted.char_span(s.start_char, s.end_char, label=f"{s.label_} {score:.2f}")
                        for s, score in zip(spans, scores)
                    ]
                predicted.user_data["title"] = f"{corpus}, passage {i + 1}: {nlp.meta.get('name', 'model')}"
                gold.user_data["title"] = f"{corpus}, passage {i + 1}: gold ({Path(path).name})"
                shown.extend([predicted, gold])
    if not shown:
        raise ValueError(f"No documents to render in {', '.join(map(str, paths))}.")
    return displacy.render(shown, style="span", page=True, options={"spans_key": spans_key})


def render_cli_main(
    model: PathLike,
    data: Sequence[PathLike],
    output: PathLike,
    *,
    spans_key: str = DEFAULT_SPANS_KEY,
    n_passages: int = 3,
    sentences: int = 10,
    gpu_id: int = -1,
) -> Path:
    import spacy

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    for path in data:
        if not Path(path).exists():
            raise ValueError(f"{path}: file not found.")
    nlp = spacy.load(model)
    html = render_page(nlp, data, spans_key=spans_key, n_passages=n_passages, sentences=sentences)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(html, encoding="utf8")
    return output
