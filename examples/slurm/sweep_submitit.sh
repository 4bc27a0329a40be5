#!/bin/bash
# A learning-rate x temperature sweep where every point is its own SLURM job on
# 2 nodes x 8 GPUs (hydra-submitit-launcher: `pip install -e '.[sweep]'`). Run it on
# the login node: it submits the jobs and waits for them.
#
#   bash examples/slurm/sweep_submitit.sh hydra.launcher.partition=gpu hydra.launcher.account=me
#
# conf/hydra/launcher/simclr_slurm.yaml asks for trainer.num_nodes nodes with
# trainer.devices tasks and GPUs each; SLURM task 0 of each job writes its directory
# multirun/<date>/<time>/<job number>/. `simclr-report multirun/<date>/<time>` compares.
set -euo pipefail
source .venv/bin/activate

simclr-pretrain -m hydra/launcher=simclr_slurm \
    experiment=imagenet_resnet50 data.root=/data/imagenet \
    trainer.devices=8 trainer.num_nodes=2 data.num_workers=11 resume=auto \
    optim.lr=0.3,0.6 loss.temperature=0.1,0.2 "$@"
