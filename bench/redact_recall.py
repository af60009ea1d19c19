"""Redaction recall per identifier type on tests/data/redaction_variants.jsonl, and its cost.

    .venv/bin/python bench/redact_recall.py                  # this tree's triage/digest/redact.py
    git show main:triage/digest/redact.py > /tmp/old_redact.py
    .venv/bin/python bench/redact_recall.py /tmp/old_redact.py --misses
    .venv/bin/python bench/redact_recall.py --cost           # seconds and peak memory per MB

A variant counts as caught when ``redact`` returns exactly the expected text: the identifier
replaced, nothing else touched. "ordinary" rows are text that must survive (false positives).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ROOT / "tests" / "data" / "redaction_variants.jsonl"
# One megabyte each: a hostile input per normalisation step, and ordinary story text.
COST_INPUTS = {
    "story text (ASCII)": "On 3 April 2023 I waited 3 hours; Jane rang 07700 900123. " * 17_242,
    "zero-width spaces": "\u200b" * 1_000_000,
    "digits and en-dashes": "1\u2013" * 500_000,
    "full-width text": "\uff41" * 1_000_000,
    "spelled (at)": "a(at)" * 200_000,
    "addresses": "a@b.c " * 166_666,
}


def load(path: str | None) -> ModuleType:
    """This tree's ``triage.redact``, or the module at ``path`` (e.g. main's, saved to a file)."""
    sys.path.insert(0, str(ROOT))
    if path is None:
        return importlib.import_module("triage.digest.redact")
    spec = importlib.util.spec_from_file_location("redact_under_test", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def recall(module: ModuleType, misses: bool) -> None:
    """Print caught/total per kind."""
    caught: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for line in VARIANTS.read_text().splitlines():
        row = json.loads(line)
        got = module.redact(row["text"], tuple(row.get("names", ())))
        total[row["kind"]] += 1
        caught[row["kind"]] += got == row["expected"]
        if misses and got != row["expected"]:
            print(f"  miss {row['kind']}: {row['text']!r} -> {got!r}")
    print("| kind | caught | recall |\n|---|---|---|")
    for kind, count in total.items():
        print(f"| {kind} | {caught[kind]}/{count} | {100 * caught[kind] / count:.0f}% |")


def cost(module: ModuleType) -> None:
    """Print seconds and peak traced memory for redacting each one-megabyte input."""
    print("| input (1 MB) | seconds | peak MB |\n|---|---|---|")
    for name, text in COST_INPUTS.items():
        started = time.perf_counter()
        module.redact(text, ("Jane",))
        seconds = time.perf_counter() - started
        tracemalloc.start()
        module.redact(text, ("Jane",))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"| {name} | {seconds:.2f} | {peak / 1e6:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", nargs="?", help="a redact.py to measure instead of this tree's")
    parser.add_argument("--misses", action="store_true", help="print every variant missed")
    parser.add_argument("--cost", action="store_true", help="time and memory per megabyte")
    args = parser.parse_args()
    module = load(args.module)
    recall(module, args.misses)
    if args.cost:
        cost(module)


if __name__ == "__main__":
    main()
