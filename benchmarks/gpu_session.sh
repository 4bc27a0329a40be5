#!/usr/bin/env bash
# Everything that needs a GPU, in one command of at most 10 minutes on one H100:
# the modules the machine lacks (from .whl/), the `gpu` tests, B5 eager and compiled,
# and a short time-to-accuracy run on the development set at 32 px.
#
#   bash benchmarks/gpu_session.sh [--data DIR|TAR] [--budget-s 570]   # on the GPU machine
#   bash benchmarks/gpu_session.sh --dry      # or GPU_SESSION_DRY=1: the same on a CPU, tiny
#
# Results and logs in $OUT (default benchmarks/results/gpu_session/): gpu_session.json
# (every step's status, time and figures, rewritten after each step), env.log,
# pytest_gpu.log/.xml, b5.log, b5_gpu.json, accuracy.log, accuracy/report.json.
# The steps and their time limits: benchmarks/gpu_session.py. The repository is used
# from here (PYTHONPATH), not installed. $PYTHON picks the interpreter (python3).
set -uo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" benchmarks/gpu_session.py "$@"
