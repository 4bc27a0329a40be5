"""The SimCLRv2 recipe table, measured: probe -> fine-tune (head layer 0, 1) -> distil.

    python -m simclr.jobs.recipe run OUT --checkpoint RUN [--seeds 10] [--distill-epochs 15]
        [--finetune-set KEY=VALUE ...] [--distill-set KEY=VALUE ...]
    make recipe RUN=outputs/<date>/<time> OUT=/tmp/recipe

From one pretraining run (RUN, e.g. the default `make run` on digits, or a run on any
labeled folder: the steps read the data from the run's config) it runs, with
each step's output under OUT/<step>/ and its log under OUT/logs/<step>.log:

1. `eval`: simclr-eval with the linear probe, fine-tuning from head layer 0 and
   the supervised-from-scratch baseline (same label subsets), at every fraction
   and seed;
2. `teachers`: simclr-finetune at the default head layer (1 for the v2 head), one
   Hydra multirun over fractions x seeds; each job keeps its classifier, the
   teacher of step 3, and gives the table its "head layer 1" row;
3. `distill`: simclr-distill, one multirun over fractions x seeds, each student
   taught by the teacher of its fraction and seed (`distill.teacher` names the
   teacher through `${seed}`, so the sweep pairs them instead of crossing them);
   the student has the teacher's encoder (self-distillation) and is trained from
   scratch for `--distill-epochs` epochs (monitors off: they change nothing here);
   `--finetune-set` adds overrides to the fine-tuning steps 1 and 2 (a shorter
   schedule, `eval.finetune.unfrozen_epochs=5`), `--distill-set` to step 3;
4. `python -m simclr.jobs.recipe` over the three: OUT/recipe.md.

Multiruns keep one process per step, so the interpreter and the data load once
(about 10 s per job saved). On a machine other jobs share, `--threads 1` can be much
faster: with the load average at 5-6 on 2 cores, a distillation epoch took 60 s with
PyTorch's default two threads and 20 s with one (the threads wait on each other). Commands and wall times go to OUT/commands.sh and
OUT/timings.json. The encoder is not retrained.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

FRACTIONS = (0.01, 0.1)
PROG = "python -m simclr.jobs.recipe run"


def program(name: str) -> str:
    """The console script `name` of the running interpreter's environment (else PATH)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"{PROG}: error: {name}: not installed (pip install -e .)")
    return found


def _eval_step(args: argparse.Namespace, listed: str) -> list[str]:
    """Step 1: the probe, fine-tuning from layer 0 and the baseline, every seed."""
    return [
        "simclr-eval",
        f"checkpoint={args.checkpoint}",
        "eval.evaluators=[linear,finetune]",
        "eval.baselines=[supervised]",
        f"eval.fractions={listed}",
        f"eval.finetune.fractions={listed}",
        f"eval.seeds={args.seeds}",
        "eval.finetune.from_head_layer=0",
        *args.finetune_set,
        f"hydra.run.dir={args.out / 'eval'}",
    ]


def _teachers_step(args: argparse.Namespace, fractions: str, seeds: str) -> list[str]:
    """Step 2: one fine-tuning multirun over fractions x seeds at the default layer."""
    return [
        "simclr-finetune",
        "-m",
        f"checkpoint={args.checkpoint}",
        f"eval.finetune.fraction={fractions}",
        f"seed={seeds}",
        *args.finetune_set,
        f"hydra.sweep.dir={args.out / 'teachers'}",
        "hydra.sweep.subdir=f${eval.finetune.fraction}_s${seed}",
    ]


def _distill_step(args: argparse.Namespace, seeds: str) -> list[str]:
    """Step 3: one distillation multirun, each student paired with its own teacher."""
    teachers = args.out / "teachers"
    # The teacher of a student: the teachers' job of the same fraction and seed.
    paired = ",".join(f"{teachers}/f{f:g}_s${{seed}}" for f in args.fractions)
    return [
        "simclr-distill",
        "-m",
        f"distill.teacher={paired}",
        f"seed={seeds}",
        f"trainer.max_epochs={args.distill_epochs}",
        "trainer.enable_progress_bar=false",
        # The representation monitors watch pretraining for collapse; here they
        # would cost a pass per epoch and change nothing the table reads.
        "monitor.enabled=false",
        "eval=none",
        *args.distill_set,
        f"hydra.sweep.dir={args.out / 'distill'}",
        "hydra.sweep.subdir=${hydra.job.num}_s${seed}",
    ]


def _table_step(args: argparse.Namespace) -> list[str]:
    """Step 4: the table over the three steps' outputs."""
    out = args.out
    return [
        "python",
        "-m",
        "simclr.jobs.recipe",
        str(out / "eval"),
        str(out / "teachers"),
        str(out / "distill"),
        "--fractions",
        *(f"{f:g}" for f in args.fractions),
        "--out",
        str(out / "recipe.md"),
    ]


def steps(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """(step name, command) in order; every path absolute, every sweep one process."""
    fractions = ",".join(f"{f:g}" for f in args.fractions)
    seeds = ",".join(str(s) for s in range(args.seeds))
    return [
        ("eval", _eval_step(args, "[" + fractions + "]")),
        ("teachers", _teachers_step(args, fractions, seeds)),
        ("distill", _distill_step(args, seeds)),
        ("recipe", _table_step(args)),
    ]


def executable(command: list[str]) -> list[str]:
    """The command as run: console scripts and `python` of this interpreter's environment."""
    head = sys.executable if command[0] == "python" else program(command[0])
    return [head, *command[1:]]


def parser() -> argparse.ArgumentParser:
    """The driver's arguments."""
    p = argparse.ArgumentParser(prog=PROG, description=(__doc__ or "").splitlines()[0])
    p.add_argument("out", type=Path, help="directory for every output (created; new)")
    p.add_argument("--checkpoint", type=Path, required=True, help="the pretraining run")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    p.add_argument("--distill-epochs", type=int, default=15)
    p.add_argument(
        "--finetune-set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="overrides of the fine-tuning steps (eval, teachers)",
    )
    p.add_argument(
        "--distill-set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="overrides of the distillation step",
    )
    p.add_argument("--threads", type=int, help="OMP/MKL threads of each command")
    p.add_argument("--only", nargs="+", help="run only these steps (the rest done)")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    return p


def run_step(name: str, command: list[str], out: Path, env: dict[str, str]) -> int:
    """Run one step with its log in OUT/logs/<name>.log; record its wall time; its exit code."""
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {shlex.join(command)}", flush=True)
    started = time.perf_counter()
    with (logs / f"{name}.log").open("w", encoding="utf-8") as log:
        code = subprocess.call(executable(command), stdout=log, stderr=subprocess.STDOUT, env=env)
    seconds = round(time.perf_counter() - started, 1)
    # Re-read first: another invocation (`--only`, run beside this one) may have
    # written its steps meanwhile.
    timings_path = out / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    timings[name] = {"seconds": seconds, "exit": code, "command": shlex.join(command)}
    timings_path.write_text(json.dumps(timings, indent=2) + "\n", encoding="utf-8")
    print(f"[{time.strftime('%H:%M:%S')}] {name}: exit {code}, {seconds} s", flush=True)
    if code != 0:
        print(f"{PROG}: error: {name} failed; see {logs / name}.log", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """`python -m simclr.jobs.recipe run OUT --checkpoint RUN ...`: run the steps in order."""
    args = parser().parse_args(argv)
    args.out, args.checkpoint = args.out.resolve(), args.checkpoint.resolve()
    if not args.checkpoint.exists():
        print(f"{PROG}: error: {args.checkpoint}: no such run", file=sys.stderr)
        return 2
    plan = [(n, c) for n, c in steps(args) if not args.only or n in args.only]
    if args.dry_run:
        for _, command in plan:
            print(shlex.join(command))
        return 0
    env = dict(os.environ)
    if args.threads:
        env |= {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, command in plan:
        with (args.out / "commands.sh").open("a", encoding="utf-8") as script:
            script.write(shlex.join(command) + "\n")
        code = run_step(name, command, args.out, env)
        if code != 0:
            return code
    if (args.out / "recipe.md").exists():
        print((args.out / "recipe.md").read_text(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
