"""`--help` of the Hydra commands: what the command does, what it needs, examples, outputs.

Hydra's own page (`--hydra-help`) lists its flags; `--cfg job` prints the composed
config as YAML. These pages say what a newcomer needs first.
"""

from __future__ import annotations

DOCS = "README.md and docs/ in the repository (errors.md, hub.md, distributed.md, report-schema.md)"

PRETRAIN = f"""\
usage: simclr-pretrain [-m] [-v] [KEY=VALUE ...]

Pretrain an encoder with SimCLR (two augmented views, projection head, NT-Xent),
then evaluate it with few labels (linear probe, kNN, MLP at 1%, 10%, 100%)
against a random-init encoder and raw pixels. Every argument is a Hydra override;
none is required: the default trains a ResNet-18 on scikit-learn's digits.

examples:
  simclr-pretrain                                      # digits preset, CPU, ~8 min here
  simclr-pretrain trainer.max_epochs=50 loss.temperature=0.2 optim=lars_sqrt
  simclr-pretrain experiment=none data=folder data.root=~/photos encoder=resnet50
  simclr-pretrain -m optim.lr=0.3,0.6 loss.temperature=0.1,0.5   # a sweep, then simclr-report
  simclr-pretrain eval=none trainer.max_time=00:01:00:00           # pretrain only, one hour

outputs:
  outputs/<date>/<time>/ (or hydra.run.dir=DIR, a new or empty directory):
  checkpoints/last.ckpt, report.md, report.json, figures, logs/, pretrain.log.
  A sweep (-m) writes multirun/<date>/<time>/<job>/. resume=auto hydra.run.dir=DIR
  continues an interrupted run.

options:
  -m, --multirun     sweep over comma-separated values
  -v, --verbose      show the libraries' messages and the model summary
  --cfg job          print the composed config (YAML) and exit
  --hydra-help       Hydra's own options

groups: data, augment, encoder, head, loss, optim, trainer, eval, experiment
(see `simclr-pretrain --cfg job` for every key and its value).
docs: {DOCS}
"""

EVALUATE = f"""\
usage: simclr-eval checkpoint=PATH [-v] [KEY=VALUE ...]

Evaluate a pretrained encoder with few labels: linear probe, kNN and MLP (and
fine-tuning with eval=full) at 1%, 10% and 100% of the labels, against a
random-init encoder and raw pixels, over several seeds.

required:
  checkpoint=PATH    a simclr-pretrain run directory, a .ckpt or a .safetensors file

The encoder, image size and normalisation come from the checkpoint; the command
line sets eval.*, seed, and data.* / augment.* on top (data=folder data.root=DIR
evaluates on another labeled folder at the checkpoint's image size).

examples:
  simclr-eval checkpoint=outputs/2026-11-23/10-00-00
  simclr-eval checkpoint=RUN eval.fractions=[0.01,0.1] eval.seeds=10
  simclr-eval checkpoint=RUN data=folder data.root=~/labeled   # other labeled data
  simclr-eval checkpoint=encoder.safetensors eval=full         # with fine-tuning

outputs:
  <run>/eval/<date>_<time>/ beside the checkpoint's run (its own report is never
  touched), or hydra.run.dir=DIR (new or empty), or outputs/<date>/<time>/ for a
  file outside a run: report.md, report.json, figures, eval.log.

options:
  -v, --verbose      show the libraries' messages
  --cfg job          print the composed config (YAML) and exit
docs: {DOCS}
"""

PAGES = {"simclr-pretrain": PRETRAIN, "simclr-eval": EVALUATE}
HELP_FLAGS = ("--help", "-h")
