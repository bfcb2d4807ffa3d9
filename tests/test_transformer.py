"""sru_ner on a spacy-transformers listener, with a tiny random BERT built here."""
import pytest
import spacy
from thinc.api import Config

pytest.importorskip("spacy_transformers")
transformers = pytest.importorskip("transformers")

from conftest import make_examples, nested_docs  # noqa: E402

CONFIG = """
[nlp]
lang = "en"
pipeline = ["transformer", "sru_ner"]

[components]

[components.transformer]
factory = "transformer"
max_batch_items = 4096

[components.transformer.model]
@architectures = "spacy-transformers.TransformerModel.v3"
name = "{name}"
mixed_precision = false

[components.transformer.model.get_spans]
@span_getters = "spacy-transformers.strided_spans.v1"
window = 32
stride = 24

[components.transformer.model.tokenizer_config]
use_fast = true

[components.sru_ner]
factory = "sru_ner"

[components.sru_ner.model]
@architectures = "spacy_sru_ner.SlotDecoder.v1"
hidden_width = 32

[components.sru_ner.model.tok2vec]
@architectures = "spacy-transformers.TransformerListener.v1"
grad_factor = 1.0
upstream = "*"

[components.sru_ner.model.tok2vec.pooling]
@layers = "reduce_max.v1"
"""


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-bert")
    words = sorted({t.lower_ for d in nested_docs(8) for t in d} | set("abcdefghijklmnopqrstuvwxyz0123456789-.,()"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=128,
    )
    transformers.BertModel(config).save_pretrained(path)
    transformers.BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True).save_pretrained(path)
    return path


def test_transformer_listener_trains_and_predicts(tiny_bert, tmp_path):
    config = Config().from_str(CONFIG.replace("{name}", str(tiny_bert)))
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    examples = make_examples(nlp, nested_docs(8))
    optimizer = nlp.initialize(lambda: examples)
    losses = {}
    nlp.update(examples, sgd=optimizer, losses=losses)
    assert losses["sru_ner"] > 0 and losses["transformer"] >= 0
    # a doc longer than the transformer window (strided spans) and an empty doc
    texts = [examples[0].reference.text * 3, "", "IL-2 🧬 promoter"]
    docs = list(nlp.pipe(texts))
    for doc in docs:
        group = doc.spans["sru_ner"]
        assert len(group.attrs["scores"]) == len(group)
    nlp.to_disk(tmp_path / "trf")
    reloaded = spacy.load(tmp_path / "trf")
    for a, b in zip(docs, reloaded.pipe(texts)):
        assert [(s.start, s.end, s.label_) for s in a.spans["sru_ner"]] == [
            (s.start, s.end, s.label_) for s in b.spans["sru_ner"]
        ]
