"""Copy (or link) the corpora from a local folder into the project's assets.

    python scripts/fetch_local.py DATA_DIR assets/corpora [--link] [--force]

DATA_DIR holds the corpora in the MTL-Bioinformatics-2016 layout (one folder per
corpus: BC5CDR-IOB/, JNLPBA/, ..., plus conll2003/ and genia/). Each known folder
found there is copied to DEST/<folder>; a missing one is reported and skipped
(e.g. BC4CHEMD), so the later steps simply leave that corpus out. A folder
already in DEST (e.g. from ``weasel assets``) is kept unless --force is given.
"""
import argparse
import shutil
from pathlib import Path
from typing import List, Optional

from project_corpora import SOURCE_FOLDERS


def fetch_local(data_dir: Path, dest: Path, *, link: bool = False, force: bool = False) -> List[str]:
    """Copy/link every known corpus folder; returns the folders now in ``dest``."""
    if not data_dir.is_dir():
        print(
            f"⚠ data_dir {data_dir} does not exist: nothing copied. Point --vars.data_dir "
            f"at a folder with the corpora, or run 'python -m weasel assets' to download them."
        )
        return sorted(p.name for p in dest.iterdir()) if dest.is_dir() else []
    dest.mkdir(parents=True, exist_ok=True)
    present: List[str] = []
    for folder in SOURCE_FOLDERS:
        src = data_dir / folder
        target = dest / folder
        if not src.is_dir():
            if target.exists():
                print(f"ℹ {folder}: not found in {data_dir}, keeping the copy already in {dest}")
                present.append(folder)
            else:
                print(f"⚠ skipping {folder}: not found in {data_dir}")
            continue
        if target.exists() or target.is_symlink():
            if not force:
                print(f"ℹ {folder}: already in {dest}, kept (--force to replace)")
                present.append(folder)
                continue
            if target.is_symlink() or target.is_file():
                target.unlink()
            else:
                shutil.rmtree(target)
        if link:
            target.symlink_to(src.resolve(), target_is_directory=True)
            print(f"✔ {folder}: linked {target} -> {src.resolve()}")
        else:
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
            print(f"✔ {folder}: copied to {target}")
        present.append(folder)
    readme = data_dir / "README.md"
    if readme.is_file():
        shutil.copyfile(readme, dest / "README.md")
    return present


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--link", action="store_true", help="symlink the folders instead of copying")
    parser.add_argument("--force", action="store_true", help="replace folders already in DEST")
    args = parser.parse_args(argv)
    present = fetch_local(args.data_dir, args.dest, link=args.link, force=args.force)
    print(f"{len(present)} corpus folder(s) in {args.dest}: {', '.join(present) or '-'}")


if __name__ == "__main__":
    main()
