"""Annotate a text collection with a trained pipeline: ``python -m spacy_sru_ner annotate``.

Input: JSONL (one ``{"id": ..., "text": ...}`` object per line; the field names
can be changed) or PubTator (``PMID|t|title`` / ``PMID|a|abstract`` blocks; the
text is ``title + " " + abstract`` and any annotation lines in the input are
ignored).

Output: JSONL, one line per document::

    {"id": ..., ["text": ...,] "entities": [{"start": 0, "end": 4, "label": "protein", "score": 0.98, "text": "IL-2"}]}

with character offsets into the text (end exclusive), or PubTator
(``PMID<TAB>start<TAB>end<TAB>mention<TAB>label<TAB>score`` lines after the
title and abstract lines; line breaks and tabs inside the text are written as
spaces, which keeps every offset valid; a text from JSONL becomes the title,
with an empty abstract line).

The run is resumable: if the output file exists, the ids it already holds are
skipped and the new documents are appended; every document is written and
flushed as soon as it is annotated, and an incomplete last record left by a
killed run is removed before appending. Bad input lines (invalid JSON or UTF-8,
a missing or ill-typed id or text, a duplicate id, a stray PubTator line) are
reported with their line number on stderr, counted and skipped; the run goes
on and still succeeds (the summary reports the bad count).

Modules: :mod:`.io` (reading the input, writing the results, reading an
output back), :mod:`.resume` (what an existing output holds) and :mod:`.runner`
(the run). ``annotate-dask`` (:mod:`spacy_sru_ner.distributed`) runs
:func:`annotate_file` once per partition.
"""
from .io import AnnotateError, BadRecord, Record, doc_entities, format_jsonl, format_pubtator, id_key
from .io import pubtator_id_problem, read_jsonl, read_output, read_pubtator, read_records
from .resume import prepare_output, scan_output
from .runner import MAX_SHOWN_BAD, AnnotateStats, annotate, annotate_file, load_model, print_summary
from .runner import check_format, resolve_spans_key

__all__ = [
    "MAX_SHOWN_BAD",
    "AnnotateError",
    "AnnotateStats",
    "BadRecord",
    "Record",
    "annotate",
    "annotate_file",
    "check_format",
    "doc_entities",
    "format_jsonl",
    "format_pubtator",
    "id_key",
    "load_model",
    "prepare_output",
    "print_summary",
    "pubtator_id_problem",
    "read_jsonl",
    "read_output",
    "read_pubtator",
    "read_records",
    "resolve_spans_key",
    "scan_output",
]
