"""``annotate_collection`` / ``annotate-dask``: Dask over partition files, one model load per worker."""
import json
import os
from collections import defaultdict
from pathlib import Path

import pytest
import spacy
from typer.testing import CliRunner

from conftest import nested_docs, train_nlp
from spacy_sru_ner.annotate import AnnotateError, annotate_file, read_output
from spacy_sru_ner.cli import app
from spacy_sru_ner.demo import load_demo_docs

pytest.importorskip("dask.bag")

from spacy_sru_ner.distributed import annotate_collection, expand_inputs  # noqa: E402

N_PARTS = 4


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    nlp, _, _ = train_nlp(nested_docs(20), n_iter=60, target_f=0.3)
    nlp.get_pipe("sru_ner").cfg["threshold"] = 0.3
    path = tmp_path_factory.mktemp("dask") / "model"
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """4 JSONL partitions of 6 demo sentences each; partition 2 has a bad line."""
    folder = tmp_path_factory.mktemp("parts")
    texts = [doc.text for doc in load_demo_docs("train")[: N_PARTS * 6]]
    for p in range(N_PARTS):
        lines = [json.dumps({"id": f"p{p}-{i}", "text": texts[p * 6 + i]}) for i in range(6)]
        if p == 2:
            lines.insert(3, '{"id": "broken"')
        (folder / f"part-{p}.jsonl").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def single(model_dir, parts, tmp_path_factory):
    """The single-process annotate output of every partition."""
    nlp = spacy.load(model_dir)
    out = tmp_path_factory.mktemp("single")
    for p in range(N_PARTS):
        annotate_file(nlp, parts / f"part-{p}.jsonl", out / f"part-{p}.jsonl", progress=False)
    return out


def assert_same_outputs(folder: Path, reference: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in reference.iterdir())
    for ref in reference.iterdir():
        rows, ref_rows = read_output(folder / ref.name), read_output(ref)
        assert [r["id"] for r in rows] == [r["id"] for r in ref_rows]
        for row, ref_row in zip(rows, ref_rows):
            assert [(e["start"], e["end"], e["label"]) for e in row["entities"]] == [
                (e["start"], e["end"], e["label"]) for e in ref_row["entities"]
            ]
            assert [e["score"] for e in row["entities"]] == pytest.approx(
                [e["score"] for e in ref_row["entities"]], abs=2e-4
            )


def test_processes_scheduler_matches_single_process_one_load_per_worker(model_dir, parts, single, tmp_path):
    out = tmp_path / "out"
    reports = annotate_collection(
        str(model_dir), str(parts / "*.jsonl"), out, scheduler="processes", n_workers=2, batch_size=4
    )
    assert [Path(r["input"]).name for r in reports] == [f"part-{p}.jsonl" for p in range(N_PARTS)]
    assert_same_outputs(out, single)
    assert sum(len(r["entities"]) for r in map(read_output, out.iterdir()) for r in r) > 0
    # the bad line of partition 2 is reported with its line number, the rest annotated
    assert [(r["read"], r["annotated"], r["bad"]) for r in reports] == [(6, 6, 0)] * 2 + [(7, 6, 1), (6, 6, 0)]
    assert "part-2.jsonl:4: invalid JSON" in reports[2]["bad_messages"][0]
    # worker processes, not this one; each loaded the model once, however many partitions it got
    by_pid = defaultdict(list)
    for report in reports:
        by_pid[report["pid"]].append(report)
    assert os.getpid() not in by_pid and 1 <= len(by_pid) <= 2
    assert all(r["model_loads"] == 1 for r in reports)
    assert max(len(rs) for rs in by_pid.values()) >= 2  # a worker reused its cached model
    # rerun: everything is done, nothing is appended
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = annotate_collection(str(model_dir), [parts / "part-0.jsonl", parts / "part-3.jsonl"], out,
                                scheduler="synchronous")
    assert [(r["done"], r["annotated"]) for r in again] == [(6, 0), (6, 0)]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_cli_threads_scheduler_and_resume(model_dir, parts, single, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    # a partly done partition: its first 2 documents are kept, the rest is added
    done = (single / "part-1.jsonl").read_text().splitlines(keepends=True)[:2]
    (out / "part-1.jsonl").write_text("".join(done))
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["annotate-dask", str(model_dir), f"{parts / 'part-0.jsonl'},{parts / 'part-1.jsonl'}", str(out),
         "--scheduler", "threads", "--n-workers", "2", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert "2 partitions" in result.stdout and "annotated 10" in result.stdout and "skipped as done 2" in result.stdout
    for name in ("part-0.jsonl", "part-1.jsonl"):
        assert (out / name).read_text() == (single / name).read_text()


def test_local_cluster(model_dir, parts, single, tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "out"
    reports = annotate_collection(str(model_dir), parts, out, scheduler="distributed", n_workers=2)
    assert_same_outputs(out, single)
    assert all(r["model_loads"] == 1 for r in reports)
    assert len({r["pid"] for r in reports}) <= 2 and os.getpid() not in {r["pid"] for r in reports}


def test_input_errors(model_dir, parts, tmp_path):
    with pytest.raises(AnnotateError, match="no input files match"):
        expand_inputs(str(tmp_path / "*.jsonl"))
    with pytest.raises(AnnotateError, match="input not found"):
        expand_inputs([tmp_path / "missing.jsonl"])
    other = tmp_path / "other"
    other.mkdir()
    (other / "part-0.jsonl").write_text("")
    with pytest.raises(AnnotateError, match="would both be written to"):
        annotate_collection(str(model_dir), [parts / "part-0.jsonl", other / "part-0.jsonl"], tmp_path / "o")
    with pytest.raises(AnnotateError, match="would overwrite it"):
        annotate_collection(str(model_dir), [parts / "part-0.jsonl"], parts)
