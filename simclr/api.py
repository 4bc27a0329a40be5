"""The Python API: the console scripts' jobs, called from a notebook or a script.

    import simclr
    result = simclr.pretrain(["trainer.max_epochs=5", "eval.seeds=3"])
    result.run_dir, result.report["headline"]
    again = simclr.evaluation(result.run_dir, ["eval.fractions=[0.1]"])

The overrides are the command line's, composed with the same Hydra configs and
checked by the same code as `simclr-pretrain` / `simclr-eval`: a typo'd key or a
bad value raises :class:`~simclr.errors.ConfigError` with the same one-line
message the console prints (without the program name).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf, open_dict

from simclr.config.compose import compose_checked
from simclr.config.schema import RunConfig, as_run_config
from simclr.console.app import CONF_DIR, CONFIG_NAME
from simclr.console.preflight import expand_home
from simclr.runs.rundir import RunDir


@dataclass(frozen=True)
class RunResult:
    """Where a job wrote its files, and its report (None when it did not evaluate)."""

    run_dir: Path
    report: dict[str, Any] | None

    @property
    def headline(self) -> float | None:
        """The report's headline accuracy (what a sweep would maximise)."""
        return None if self.report is None else self.report["headline"]["mean"]


def compose(overrides: Sequence[str] = ()) -> tuple[RunConfig, Path]:
    """The run config `simclr-pretrain OVERRIDES` would use, and its default run directory.

    Raises:
        ConfigError: an unknown key, a value of the wrong type, a missing option.
    """
    cfg = compose_checked(CONF_DIR, CONFIG_NAME, expand_home(overrides))
    run_dir = Path(str(OmegaConf.select(cfg, "hydra.run.dir"))).expanduser()
    with open_dict(cfg):
        cfg.pop("hydra")
    return as_run_config(cfg), run_dir


def _result(run_dir: Path, report_md: Path | None) -> RunResult:
    if report_md is None:
        return RunResult(run_dir, None)
    return RunResult(run_dir, json.loads(report_md.with_name("report.json").read_text()))


def pretrain(overrides: Sequence[str] = (), run_dir: str | Path | None = None) -> RunResult:
    """Pretrain (and evaluate, unless `eval=none`) as `simclr-pretrain OVERRIDES` would.

    Args:
        overrides: Hydra overrides, e.g. ``["experiment=digits", "trainer.max_epochs=5"]``.
        run_dir: where the run's files go (default: the config's ``hydra.run.dir``,
            ``outputs/<date>/<time>``); a finished run there is refused.
    """
    from simclr.config import validate_config
    from simclr.config.validate import check_read_by
    from simclr.jobs.pretrain import check_run_dir, pretrain_run

    cfg, default_dir = compose(overrides)
    run = RunDir(Path(run_dir).expanduser() if run_dir is not None else default_dir)
    validate_config(cfg)  # as the console does: before anything is written
    check_read_by(cfg, "simclr-pretrain")
    check_run_dir(run, str(cfg.resume), started=False)
    run.path.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["simclr.pretrain", *overrides])
    return _result(run.path, pretrain_run(cfg, run, command=command))


def evaluate(
    checkpoint: str | Path, overrides: Sequence[str] = (), out_dir: str | Path | None = None
) -> RunResult:
    """Evaluate a checkpoint (run dir, .ckpt or .safetensors) as `simclr-eval` would.

    Args:
        checkpoint: what to evaluate.
        overrides: Hydra overrides for `eval.*`, `seed`, `data` (e.g. another labeled folder).
        out_dir: where the report goes (default: the config's ``hydra.run.dir``).
    """
    from simclr.console.preflight import check_new_or_empty
    from simclr.evaluation.checkpoint import check_request, evaluate_checkpoint

    given = [*overrides, f"checkpoint={checkpoint}"]
    cfg, default_dir = compose(given)
    check_request(cfg)
    out = Path(out_dir).expanduser() if out_dir is not None else default_dir
    check_new_or_empty("out_dir", out, "an evaluation")
    out.mkdir(parents=True, exist_ok=True)
    report = evaluate_checkpoint(cfg, given, out, command=shlex.join(["simclr.evaluation", *given]))
    return _result(out, report)
