"""`simclr-pretrain`: the Hydra app that pretrains, then evaluates unless `eval=none`.

simclr-pretrain                                  # embedded digits preset
simclr-pretrain experiment=cifar10_resnet18 data.root=~/data
simclr-pretrain -m optim.lr=0.3,0.6 loss.temperature=0.1,0.5
"""

from __future__ import annotations

import sys

import hydra

from simclr.config.schema import RunConfig
from simclr.console.app import CONF_DIR, CONFIG_NAME, hydra_job, run_app
from simclr.console.errors import EXIT_USER_ERROR, report_error
from simclr.errors import SimclrError
from simclr.runs.rundir import RunDir

PROGRAM = "simclr-pretrain"


def _check(cfg: RunConfig, run: RunDir | None) -> None:
    """Before Hydra writes anything: the values; then, under the run directory's lock
    (`run` given), what it holds and the checkpoint a resume would continue."""
    from simclr.config import validate_config
    from simclr.config.validate import check_read_by
    from simclr.jobs.pretrain import check_run_dir
    from simclr.runs.output import claim_of
    from simclr.training.trainer import check_devices

    validate_config(cfg)
    check_read_by(cfg, PROGRAM)
    check_devices(cfg)
    if run is None:
        return
    taken = claim_of(run.path)
    last = check_run_dir(run, str(cfg.resume), taken.before if taken else ())
    if last is not None:
        import warnings

        from omegaconf import OmegaConf

        from simclr.config.schema import as_run_config, node_of
        from simclr.training.resume import check_resumable

        node = node_of(cfg)
        job = as_run_config(OmegaConf.masked_copy(node, [str(k) for k in node if k != "hydra"]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # said once, by the job, into its log too
            check_resumable(last, job)


def _pretrain(cfg: RunConfig, run: RunDir) -> float | None:
    from simclr.config.resolvers import launched_as_rank_zero
    from simclr.console.app import final_block
    from simclr.evaluation import headline_metric
    from simclr.jobs.pretrain import pretrain_run

    report = pretrain_run(cfg, run, command=" ".join([PROGRAM, *sys.argv[1:]]))
    if launched_as_rank_zero():
        print(final_block(PROGRAM, run, report, run.last_checkpoint), flush=True)
    # What a Hydra sweeper (e.g. Optuna) maximises.
    return None if report is None else headline_metric(report)


@hydra.main(config_path=CONF_DIR, config_name=CONFIG_NAME, version_base="1.3")
def _main(cfg: RunConfig) -> float | None:
    return hydra_job(PROGRAM, cfg, _pretrain)


def cli() -> None:
    """Console entry point of `simclr-pretrain`."""
    from simclr.training.launch import external_launch_overrides

    try:
        # Under torchrun/SLURM every rank runs this: agree on one run directory.
        sys.argv += external_launch_overrides(sys.argv[1:])
    except SimclrError as err:
        report_error(PROGRAM, err)
        sys.exit(EXIT_USER_ERROR)
    run_app(PROGRAM, _main, _check)  # bad input: one line, exit 2, nothing written


if __name__ == "__main__":
    cli()
