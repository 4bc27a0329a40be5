"""The SimCLRv2 recipe in one table: probe -> fine-tune (head layer 0, default layer) -> distil.

    python -m simclr.jobs.recipe DIR [DIR ...] [--out recipe.md]
    python -m simclr.jobs.recipe run OUT --checkpoint RUN [...]   # run the steps, then this

The second form (`make recipe`) runs every step of the recipe from one pretraining run
and ends with the first: see simclr.jobs.recipe_driver.

Reads, under each DIR (recursively), what the commands wrote:

- `report.json` (simclr-pretrain / simclr-eval): the linear probe on the pretrained
  encoder, fine-tuning rows (with the head layer each started from) and the
  supervised-from-scratch baseline;
- `finetune.json` (simclr-finetune): one fine-tuned classifier, its layer and accuracy;
- `distill.json` (simclr-distill): one student, at its teacher's label fraction.

and prints one Markdown table: a row per step of the recipe, a column per label
fraction, mean ± sample std over seeds (with the number of seeds). The same
(row, fraction, seed) read twice counts once.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

LINEAR = "Linear probe (pretrained encoder)"
SUPERVISED = "Supervised from scratch (same labels)"
ORDER = (LINEAR, *(f"Fine-tuned from head layer {k}" for k in range(3)))

Cell = tuple[str, float]  # (row, fraction)


def finetune_row(layer: Any) -> str:
    return f"Fine-tuned from head layer {int(layer or 0)}"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def results_of(path: Path) -> Iterable[tuple[str, float, int, float]]:
    """(row, fraction, seed, accuracy) of one report.json, finetune.json or distill.json."""
    data = _read(path)
    if path.name == "report.json":
        for run in data.get("runs", []):
            rep, evaluator = run.get("representation"), run.get("evaluator")
            if evaluator == "linear" and rep == "simclr":
                row = LINEAR
            elif evaluator == "finetune" and rep == "simclr":
                row = finetune_row((run.get("chosen") or {}).get("from_head_layer"))
            elif evaluator == "finetune" and rep == "supervised":
                row = SUPERVISED
            else:
                continue
            yield row, float(run["fraction"]), int(run["seed"]), float(run["accuracy"])
    elif path.name == "finetune.json" and "test_accuracy" in data:
        row = finetune_row((data.get("chosen") or {}).get("from_head_layer"))
        yield row, float(data["fraction"]), int(data["seed"]), float(data["test_accuracy"])
    elif path.name == "distill.json" and data.get("test_accuracy") is not None:
        layer = data.get("teacher_from_head_layer")
        row = f"Distilled student ({data.get('student', '?')}; teacher from head layer {layer})"
        yield (
            row,
            float(data["teacher_fraction"]),
            int(data["teacher_seed"]),
            float(data["test_accuracy"]),
        )


def collect(roots: Sequence[Path]) -> dict[Cell, dict[int, float]]:
    """(row, fraction) -> {seed: accuracy} over every result file under `roots`."""
    cells: dict[Cell, dict[int, float]] = defaultdict(dict)
    for root in roots:
        files = [root] if root.is_file() else sorted(root.rglob("*.json"))
        for path in files:
            if path.name in ("report.json", "finetune.json", "distill.json"):
                for row, fraction, seed, accuracy in results_of(path):
                    cells[(row, fraction)].setdefault(seed, accuracy)
    return cells


def _order(row: str) -> tuple[int, str]:
    if row in ORDER:
        return ORDER.index(row), row
    return (len(ORDER) + (1 if row == SUPERVISED else 0)), row


def recipe_table(cells: dict[Cell, dict[int, float]], fractions: Sequence[float] = ()) -> str:
    """The Markdown table: rows in recipe order, one column per fraction."""
    fractions = sorted(fractions or {f for _, f in cells})
    rows = sorted({r for r, _ in cells}, key=_order)
    header = ["Step", *(f"{100 * f:g}% labels" for f in fractions)]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(fractions)]
    for row in rows:
        out = [row]
        for f in fractions:
            accs = list(cells.get((row, f), {}).values())
            if not accs:
                out.append("")
                continue
            std = float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0
            out.append(f"{100 * np.mean(accs):.1f} ± {100 * std:.1f} ({len(accs)})")
        lines.append("| " + " | ".join(out) + " |")
    note = "Test accuracy (%), mean ± sample std over seeds (number of seeds)."
    return "\n".join([*lines, "", note]) + "\n"


def cli(argv: list[str] | None = None) -> int:
    """`python -m simclr.jobs.recipe DIR ... [--out FILE]`: print (and write) the recipe table.

    `python -m simclr.jobs.recipe run ...` runs the recipe's steps first and ends here
    (simclr.jobs.recipe_driver); to read a directory named `run`, write `./run`.
    """
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["run"]:
        from simclr.jobs.recipe_driver import main

        return main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="simclr-recipe",
        description=__doc__.splitlines()[0],
        epilog="`python -m simclr.jobs.recipe run --help`: run the recipe's steps, then this.",
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="run directories to read")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument("--fractions", type=float, nargs="*", default=[], help="columns")
    args = parser.parse_args(argv)
    missing = [d for d in args.dirs if not d.exists()]
    if missing:
        print(f"simclr-recipe: error: {missing[0]}: no such directory", file=sys.stderr)
        return 2
    cells = collect(args.dirs)
    if not cells:
        print(f"simclr-recipe: error: no results under {args.dirs[0]}", file=sys.stderr)
        return 2
    table = recipe_table(cells, args.fractions)
    print(table, end="")
    if args.out:
        args.out.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
