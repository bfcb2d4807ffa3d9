"""Run ``benchmarks/speed.py`` (sru_ner vs ner speed and memory, same tok2vec) and keep its tables.

    python scripts/benchmark.py metrics/benchmark.md [speed.py options: --steps 200 --repeat 3 ...]

Prints speed.py's output as it comes and writes it to the given file.
"""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        raise SystemExit(__doc__)
    output = Path(sys.argv[1])
    cmd = [sys.executable, str(ROOT / "benchmarks" / "speed.py"), *sys.argv[2:]]
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        raise SystemExit(proc.returncode)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(proc.stdout, encoding="utf8")
    print(f"✔ Saved {output}")


if __name__ == "__main__":
    main()
