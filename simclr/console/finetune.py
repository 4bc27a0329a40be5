"""`simclr-finetune`: fine-tune a pretrained encoder on a label subset, keep the classifier.

    simclr-finetune checkpoint=outputs/2026-11-23/10-00-00 eval.finetune.fraction=0.01 seed=0
    simclr-finetune -m checkpoint=RUN eval.finetune.fraction=0.01,0.1 seed=0,1,2

The checkpoint's configuration is the base; `eval.finetune.*`, `seed` and `data.*`
come from the command line (as for simclr-eval). See :mod:`simclr.jobs.finetune`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from simclr.config.schema import RunConfig
from simclr.console.app import CONF_DIR, CONFIG_NAME, hydra_job, run_app
from simclr.runs.rundir import RunDir

PROGRAM = "simclr-finetune"


def _check(cfg: RunConfig, run: RunDir | None) -> None:
    from simclr.evaluation.checkpoint import check_request
    from simclr.runs.output import check_new_or_empty, claim_of

    check_request(cfg)
    if run is not None:
        taken = claim_of(run.path)
        check_new_or_empty(
            "hydra.run.dir", run.path, "a fine-tuning run", taken.before if taken else None
        )


def _finetune(cfg: RunConfig, run: RunDir) -> float:
    from simclr.config.validate import validate_data
    from simclr.evaluation.checkpoint import effective_config
    from simclr.evaluation.collect import eval_data_config
    from simclr.hub.loading import read_weights
    from simclr.jobs.finetune import finetune_checkpoint
    from simclr.runs.output import check_apart

    overrides = list(HydraConfig.get().overrides.task)
    _, weights = read_weights(str(cfg.checkpoint))  # fails here, in a second, if unreadable
    run_cfg = effective_config(cfg, weights.config, overrides)
    key = "eval.data" if cfg.eval.data else "data"
    validate_data(eval_data_config(run_cfg), key=key)
    root = OmegaConf.select(eval_data_config(run_cfg), "root", default=None)
    check_apart("hydra.run.dir", run.path, {f"{key}.root": Path(str(root)) if root else None})
    path = finetune_checkpoint(
        str(cfg.checkpoint),
        cfg.eval.finetune.fraction,
        cfg.seed,
        run.path,
        cfg=run_cfg,
        command=" ".join([PROGRAM, *overrides]),
    )
    print(f"classifier: {path}")
    info = json.loads((path.parent / "finetune.json").read_text())
    return float(info["test_accuracy"])  # what a Hydra sweeper maximises


@hydra.main(config_path=CONF_DIR, config_name=CONFIG_NAME, version_base="1.3")
def _main(cfg: RunConfig) -> float | None:
    return hydra_job(PROGRAM, cfg, _finetune)


def cli() -> None:
    """Console entry point of `simclr-finetune`."""
    run_app(PROGRAM, _main, _check)  # bad input: one line, exit 2


if __name__ == "__main__":
    cli()
    sys.exit(0)
