"""CoNLL-2003 style corpora: ``token POS chunk NER`` per line, NER tag last.

``-DOCSTART- -X- -X- O`` lines separate documents, blank lines separate
sentences. The number of columns is taken from the first token line and must
be the same on every line; tags must be IOB2 (the original IOB1 distribution
would show up as repaired ``I-`` tags).
"""
from .common import LabelMap, ParsedCorpus, PathLike
from .iob import read_tagged_file


def read_conll(path: PathLike, label_map: LabelMap = None) -> ParsedCorpus:
    """Read a space-separated CoNLL file whose last column is the IOB2 NER tag."""
    return read_tagged_file(
        path,
        sep=None,
        n_columns=None,
        tag_columns=[-1],
        label_map=label_map,
        layout="token POS chunk NER",
        min_columns=2,
    )
