"""`simclr-report DIR`: one table over the runs of a Hydra multirun directory.

    simclr-report multirun/2026-11-23/10-00-00
    simclr-report multirun/2026-11-23/10-00-00 --evaluator knn --fraction 0.01

Each job directory (`0/`, `1/`, ... with `.hydra/overrides.yaml`) is one row: its
swept overrides as columns, its status, and the metric (SimCLR's mean test
accuracy for one evaluator and label fraction, by default the linear probe at
10%). Writes sweep.md (sorted by the metric), sweep.csv, sweep.json and
sweep.png (the metric against each swept parameter) into DIR. Runs that failed
or have not finished are rows marked so, never dropped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simclr.config.choices import Baseline, Evaluator
from simclr.console.errors import run_command

EPILOG = """\
examples:
  simclr-report multirun/2026-11-23/10-00-00
  simclr-report multirun/2026-11-23/10-00-00 --evaluator knn --fraction 0.01

outputs: sweep.md, sweep.csv, sweep.json and sweep.png inside DIR.
docs: README.md ("Sweep") and docs/report-schema.md
"""
PROGRAM = "simclr-report"
EVALUATORS = [e.value for e in Evaluator]
REPRESENTATIONS = ["simclr", *(b.value for b in Baseline)]


def _fraction(text: str) -> float:
    """A label fraction in (0, 1], or argparse's one-line error naming it."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a label fraction in (0, 1]")
    return value


def cli(argv: list[str] | None = None) -> int:
    """Console entry point of `simclr-report`."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("directory", type=Path, help="a Hydra multirun directory")
    parser.add_argument("--evaluator", default="linear", choices=EVALUATORS)
    parser.add_argument("--fraction", type=_fraction, default=0.1, help="label fraction (0.1)")
    parser.add_argument("--representation", default="simclr", choices=REPRESENTATIONS)
    args = parser.parse_args(argv)

    def report() -> int:
        from simclr.evaluation.sweep import report_sweep

        rows = report_sweep(args.directory, args.evaluator, args.fraction, args.representation)
        print((args.directory / "sweep.md").read_text(), end="")
        print(
            f"{len(rows)} runs; wrote sweep.md, sweep.csv, sweep.json, sweep.png in {args.directory}"
        )
        return 0

    return run_command(PROGRAM, report)


if __name__ == "__main__":
    sys.exit(cli())
