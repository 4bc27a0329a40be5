"""`simclr-eval`: evaluate a trained encoder (run dir, .ckpt or .safetensors).

    simclr-eval checkpoint=outputs/2026-11-23/10-00-00
    simclr-eval checkpoint=PATH data=folder data.root=DIR eval.fractions=[0.01,0.1,1.0] eval.seeds=10

The report goes to this command's Hydra output directory; see
:func:`simclr.evaluation.checkpoint.evaluate_checkpoint` for what comes from where.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig

from simclr.config.schema import RunConfig
from simclr.console.app import CONF_DIR, CONFIG_NAME, hydra_job, run_app
from simclr.runs.rundir import RunDir

PROGRAM = "simclr-eval"


def _check(cfg: RunConfig, run: RunDir | None) -> None:
    """Before Hydra writes anything: a checkpoint, valid eval values; then, under the
    output directory's lock, that it is new or empty and not inside a run in progress."""
    from simclr.evaluation.checkpoint import check_request
    from simclr.runs.output import check_new_or_empty, check_outside_live_run, claim_of

    weights = check_request(cfg)
    if run is not None:
        taken = claim_of(run.path)
        check_new_or_empty(
            "hydra.run.dir", run.path, "an evaluation", taken.before if taken else None
        )
        trained = RunDir.of_checkpoint(weights)
        check_outside_live_run("hydra.run.dir", run.path, trained.path if trained else None)


def _beside_the_run(cfg: RunConfig) -> Path | None:
    """`<run>/eval/<date>_<time>` when the checkpoint belongs to a writable run directory
    that no process is training into (a run in progress is not written into: the
    evaluation then gets Hydra's default directory of its own)."""
    from simclr.evaluation.checkpoint import check_request
    from simclr.runs.lock import read_holder

    run = RunDir.of_checkpoint(check_request(cfg))
    if run is None or not os.access(run.path, os.W_OK):
        return None
    holder = read_holder(run)
    if holder is not None and holder.alive():
        return None
    return run.evaluations / dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")


def _evaluate(cfg: RunConfig, run: RunDir) -> float | None:
    from simclr.console.app import final_block
    from simclr.evaluation import headline_metric
    from simclr.evaluation.checkpoint import check_request, evaluate_checkpoint

    report = evaluate_checkpoint(cfg, list(HydraConfig.get().overrides.task), run.path)
    print(final_block(PROGRAM, run, report, check_request(cfg)), flush=True)
    return headline_metric(report)


@hydra.main(config_path=CONF_DIR, config_name=CONFIG_NAME, version_base="1.3")
def _main(cfg: RunConfig) -> float | None:
    return hydra_job(PROGRAM, cfg, _evaluate)


def cli() -> None:
    """Console entry point of `simclr-eval`."""
    run_app(PROGRAM, _main, _check, _beside_the_run)  # bad input: one line, exit 2


if __name__ == "__main__":
    cli()
