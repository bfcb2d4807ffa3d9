"""``TITLE=PATH`` command-line arguments, shared by the CLI and the project's scripts."""
from pathlib import Path
from typing import Tuple


def named_path(arg: str, *, what: str = "TITLE=PATH", title_required: bool = False) -> Tuple[str, Path]:
    """Split ``TITLE=PATH`` at its last ``=`` (a title may hold ``=``, a path may not).

    A bare PATH is titled by its file name without suffix, or, with ``title_required``,
    is an error; so is an empty title or path. Errors are ``ValueError`` naming ``what``.
    """
    title, sep, path = arg.rpartition("=")
    if sep:
        if not title or not path:
            raise ValueError(f"expected {what}, got {arg!r}")
        return title, Path(path)
    if title_required or not arg:
        raise ValueError(f"expected {what}, got {arg!r}")
    return Path(arg).stem, Path(arg)
