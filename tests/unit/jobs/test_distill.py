"""Distillation: the loss against a hand-written cross-entropy, and a student that learns
to agree with its teacher on an easy problem (self-distillation and big -> small)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from simclr.losses.distillation import distillation_loss
from tests.unit.models.test_classifier import _colour_folder, _pretrained_checkpoint


def _softmax(row: list[float], t: float) -> list[float]:
    exps = [math.exp(v / t) for v in row]
    return [e / sum(exps) for e in exps]


def test_loss_equals_a_hand_written_cross_entropy_at_a_temperature():
    gen = torch.Generator().manual_seed(0)
    student = torch.randn(5, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(5, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    t = 2.5
    expected = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist(), strict=True):
        p_t, p_s = _softmax(t_row, t), _softmax(s_row, t)
        expected -= sum(a * math.log(b) for a, b in zip(p_t, p_s, strict=True))
    expected /= 5
    loss = distillation_loss(student, teacher, t)
    assert float(loss) == pytest.approx(expected, rel=1e-12)
    # The same as KL(P_T || P_S) plus the teacher's entropy.
    log_t = F.log_softmax(teacher / t, dim=1)
    kl = F.kl_div(F.log_softmax(student / t, dim=1), log_t, log_target=True, reduction="batchmean")
    entropy = -(log_t.exp() * log_t).sum(1).mean()
    assert float(loss) == pytest.approx(float(kl + entropy), rel=1e-12)
    loss.backward()
    assert teacher.grad is None and student.grad is not None


def test_labeled_rows_add_the_weighted_cross_entropy():
    gen = torch.Generator().manual_seed(1)
    student = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    teacher = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    labels = torch.tensor([2, -1, 0, -1])  # -1: no label
    labeled = [(0, 2), (2, 0)]
    ce = -sum(math.log(_softmax(student[i].tolist(), 1.0)[y]) for i, y in labeled) / 2
    plain = float(distillation_loss(student, teacher, 3.0))
    with_labels = distillation_loss(student, teacher, 3.0, labels, labeled_weight=0.7)
    assert float(with_labels) == pytest.approx(plain + 0.7 * ce, rel=1e-12)
    none = torch.full((4,), -1)
    assert float(distillation_loss(student, teacher, 3.0, none, 0.7)) == pytest.approx(plain)


def test_bad_temperature_is_refused():
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), 0.0)


@pytest.fixture
def teacher(tmp_path):
    """A classifier fine-tuned on half the labels of an easy colour problem."""
    from simclr.jobs.finetune import finetune_checkpoint

    images = _colour_folder(tmp_path / "images")
    source = _pretrained_checkpoint(tmp_path, images)
    return finetune_checkpoint(source, 0.5, 0, tmp_path / "teacher"), images


def _data(images, batch: int = 8) -> list[str]:
    return [
        "data=folder",
        f"data.root={images}",
        "data.image_size=8",
        f"data.batch_size={batch}",
        "data.num_workers=0",
    ]


QUICK = [
    "optim=adamw",
    "optim.lr=0.003",
    "optim.warmup_epochs=0",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "eval=none",
]


@pytest.mark.slow  # ~40 s on two shared CPU cores: 10 epochs of 8 steps
def test_self_distilled_student_agrees_with_its_teacher(teacher, tmp_path, capfd):
    from simclr.console import distill as distill_cli
    from simclr.hub import load_encoder
    from simclr.hub.classifier import load_classifier
    from tests.support.cli_harness import run_cli

    teacher_path, images = teacher
    run_dir = tmp_path / "student"
    argv = [f"distill.teacher={teacher_path}", *_data(images, 4), *QUICK, "trainer.max_epochs=10"]
    result = run_cli(distill_cli.cli, "simclr-distill", [*argv, f"hydra.run.dir={run_dir}"], capfd)
    assert result.code == 0, result.stderr[-3000:]
    report = json.loads((run_dir / "distill.json").read_text())
    assert report["teacher_test_accuracy"] >= 0.9  # a teacher worth agreeing with
    assert report["test_agreement"] >= 0.9, report
    assert report["n_images"] == 30  # every train image, labeled or not
    # The student is an encoder like any other, and a classifier that can teach in turn.
    encoder = load_encoder(run_dir)
    assert encoder.meta["arch"] == "resnet18" and encoder.meta["stem"] == "cifar"
    student = load_classifier(run_dir / "classifier.ckpt")
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, student.encoder.state_dict()[key]), key
    assert "Distilled student" in (run_dir / "distill.md").read_text()


def test_big_to_small_takes_the_student_encoder_from_the_command_line(teacher, tmp_path, capfd):
    from simclr.console import distill as distill_cli
    from simclr.hub import load_encoder
    from tests.support.cli_harness import assert_one_line_error, run_cli

    teacher_path, images = teacher
    run_dir = tmp_path / "small"
    argv = [f"distill.teacher={teacher_path}", *_data(images), *QUICK, "trainer.max_epochs=1"]
    argv += ["encoder=timm", "encoder.timm_name=test_resnet", "distill.labeled_weight=0.5"]
    result = run_cli(distill_cli.cli, "simclr-distill", [*argv, f"hydra.run.dir={run_dir}"], capfd)
    assert result.code == 0, result.stderr[-3000:]
    assert load_encoder(run_dir).meta["timm_name"] == "test_resnet"
    # Refusals: one line each, naming the problem.
    again = run_cli(distill_cli.cli, "simclr-distill", [*argv, f"hydra.run.dir={run_dir}"], capfd)
    assert_one_line_error(again, "simclr-distill", "already holds")
    bad = [f"distill.teacher={teacher_path}", "distill.views=colour", f"hydra.run.dir={tmp_path}/x"]
    assert_one_line_error(
        run_cli(distill_cli.cli, "simclr-distill", bad, capfd), "simclr-distill", "distill.views"
    )
    not_teacher = [f"distill.teacher={images}", f"hydra.run.dir={tmp_path}/y"]
    assert_one_line_error(
        run_cli(distill_cli.cli, "simclr-distill", not_teacher, capfd),
        "simclr-distill",
        str(images),
    )


def test_distillation_schedule_is_planned_to_end_at_the_budget(teacher, tmp_path, capfd):
    """trainer.max_time stops distillation and its schedule ends there, as pretraining's.

    Checked against what the run measured (the plan equals its own projection, the
    learning rate at the last step is near its floor), never against the wall clock.
    """
    from simclr.console import distill as distill_cli
    from simclr.training.callbacks.budget import projected_total
    from tests.support.cli_harness import run_cli

    teacher_path, images = teacher
    run_dir = tmp_path / "budget"
    argv = [f"distill.teacher={teacher_path}", *_data(images, 4), *QUICK]
    argv += ["trainer.max_epochs=100000", "trainer.max_time=8s", f"hydra.run.dir={run_dir}"]
    result = run_cli(distill_cli.cli, "simclr-distill", argv, capfd)
    assert result.code == 0, result.stderr[-3000:]
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    steps = int(ckpt["global_step"])
    assert 0 < steps < 100000 * 8  # stopped by the clock
    states = ckpt["callbacks"]
    timer = next(v for k, v in states.items() if k.startswith("Timer"))
    assert timer["time_elapsed"]["train"] >= 8.0
    plan = next(v for k, v in states.items() if k.startswith("BudgetSchedule"))
    assert plan["total_steps"] < 100000 * 8  # the schedule spans the budget, not max_epochs
    if plan["replans"]:  # the rate was measured (5 start-up steps + 10)
        p = plan["projection"]
        assert plan["total_steps"] == projected_total(
            p["step"], p["rate"], p["seconds_left"], p["ceiling"]
        )
