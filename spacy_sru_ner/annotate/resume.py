"""Resuming a run: the ids an existing output holds, and removing a killed run's incomplete last record."""
import json
from pathlib import Path
from typing import Callable, Optional, Set, Tuple

from ..formats import PathLike, TextFormat
from .io import AnnotateError, id_key


def scan_output(path: PathLike, output_format: str) -> Tuple[Set[str], int]:
    """Ids already in an existing output and the byte offset where its complete records end.

    A killed run can leave an incomplete last record (JSONL: a line without its
    line break; PubTator: a block without its closing blank line); it lies past
    the returned offset. Any other unreadable content raises AnnotateError.
    """
    done: Set[str] = set()
    end = 0
    offset = 0
    path = Path(path)
    if output_format == TextFormat.jsonl:
        with path.open("rb") as file_:
            for lineno, raw in enumerate(file_, 1):
                offset += len(raw)
                if not raw.endswith(b"\n"):
                    break  # incomplete last line
                if raw.strip():
                    try:
                        obj = json.loads(raw.decode("utf-8"))
                        key = id_key(obj["id"])
                    except (ValueError, KeyError, TypeError):
                        raise AnnotateError(
                            f"{path}:{lineno}: the existing output has a line that is not an annotate "
                            "result; fix it or remove the file to start over"
                        ) from None
                    done.add(key)
                end = offset
        return done, end
    # pubtator: a document counts as done once its closing blank line is there
    pmid: Optional[str] = None
    with path.open("rb") as file_:
        for lineno, raw in enumerate(file_, 1):
            offset += len(raw)
            if not raw.endswith(b"\n"):
                break
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not line.strip():
                if pmid is not None:
                    done.add(pmid)
                pmid = None
                end = offset
                continue
            if pmid is None:
                head, sep, _ = line.partition("|t|")
                if not sep or "\t" in head:
                    raise AnnotateError(
                        f"{path}:{lineno}: the existing output has a document that does not start "
                        "with a 'PMID|t|title' line; fix it or remove the file to start over"
                    )
                pmid = head.strip()
    return done, end


def prepare_output(path: PathLike, output_format: str, log: Callable[[str], None]) -> Tuple[Set[str], int]:
    """Ids already in ``path`` (none if it does not exist), after removing an incomplete last record."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        return set(), 0
    if path.is_dir():
        raise AnnotateError(f"{path} is a folder, not an output file")
    done, end = scan_output(path, output_format)
    size = path.stat().st_size
    truncated = size - end
    if truncated:
        with path.open("r+b") as file_:
            file_.truncate(end)
        log(f"{path}: removed an incomplete last record ({truncated} bytes) left by an interrupted run")
    return done, truncated
