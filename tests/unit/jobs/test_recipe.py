"""The recipe table: every step's cell is the mean and std of the seeds' accuracies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from simclr.jobs.recipe import LINEAR, SUPERVISED, cli, collect, recipe_table


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _run(rep: str, evaluator: str, fraction: float, seed: int, acc: float, layer=None) -> dict:
    chosen = {} if layer is None else {"from_head_layer": layer}
    return {
        "representation": rep,
        "evaluator": evaluator,
        "fraction": fraction,
        "seed": seed,
        "n_labels": 1,
        "accuracy": acc,
        "chosen": chosen,
    }


def test_table_has_one_row_per_step_with_mean_std_over_seeds(tmp_path, capsys):
    linear = {0.01: [0.5, 0.6, 0.7], 0.1: [0.8, 0.9, 0.85]}
    runs = [
        _run("simclr", "linear", f, s, a) for f, accs in linear.items() for s, a in enumerate(accs)
    ]
    runs += [_run("simclr", "finetune", 0.01, s, 0.4 + s / 10, layer=0) for s in range(3)]
    runs += [_run("supervised", "finetune", 0.01, s, 0.3, layer=0) for s in range(3)]
    runs += [_run("random_init", "linear", 0.01, 0, 0.1)]  # not a step of the recipe
    _write(tmp_path / "eval" / "report.json", {"runs": runs})
    for s in range(3):
        _write(
            tmp_path / f"ft{s}" / "finetune.json",
            {
                "fraction": 0.01,
                "seed": s,
                "test_accuracy": 0.6 + s / 100,
                "chosen": {"from_head_layer": 1},
            },
        )
        _write(
            tmp_path / f"d{s}" / "distill.json",
            {
                "teacher_fraction": 0.01,
                "teacher_seed": s,
                "test_accuracy": 0.7,
                "student": "resnet18",
                "teacher_from_head_layer": 1,
            },
        )
    # A second copy of seed 0's fine-tune (e.g. read from two places) counts once.
    _write(
        tmp_path / "copy" / "finetune.json",
        {"fraction": 0.01, "seed": 0, "test_accuracy": 0.99, "chosen": {"from_head_layer": 1}},
    )

    cells = collect([tmp_path])
    assert sorted(cells[(LINEAR, 0.01)].values()) == linear[0.01]
    assert len(cells[("Fine-tuned from head layer 1", 0.01)]) == 3
    table = recipe_table(cells)
    lines = table.splitlines()
    assert lines[0] == "| Step | 1% labels | 10% labels |"
    steps = [line.split(" | ")[0].lstrip("| ") for line in lines[2:7]]
    assert steps == [
        LINEAR,
        "Fine-tuned from head layer 0",
        "Fine-tuned from head layer 1",
        "Distilled student (resnet18; teacher from head layer 1)",
        SUPERVISED,
    ]
    mean, std = 100 * np.mean(linear[0.1]), 100 * np.std(linear[0.1], ddof=1)
    assert f"{mean:.1f} ± {std:.1f} (3)" in lines[2]

    out = tmp_path / "recipe.md"
    assert cli([str(tmp_path), "--out", str(out)]) == 0
    assert out.read_text() == table
    assert cli([str(tmp_path / "nothing")]) == 2
    assert "no such directory" in capsys.readouterr().err
