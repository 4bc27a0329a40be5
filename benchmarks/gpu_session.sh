#!/usr/bin/env bash
# Everything that needs a GPU, in one command: the `gpu` tests, then B5.
#
#   bash benchmarks/gpu_session.sh            # results and logs in $OUT (or benchmarks/results)
#
# On a machine whose Python lacks hydra-core/omegaconf/antlr4/kornia, put their wheels
# in .whl/ first (benchmarks/gpu_wheels.sh makes them); they are installed into
# /tmp/site, and the repository itself is used from here (no pip install of simclr).
# Each step has its own time limit, and B5 rewrites its JSON after every arm, so a
# session cut short still brings back what it measured.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 BENCH_RESULTS="$OUT"

{ nvidia-smi; "$PY" -c "import torch, torchvision, pytorch_lightning as pl, kornia, hydra
print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'lightning', pl.__version__,
      'kornia', kornia.__version__, 'hydra', hydra.__version__, 'gpu', torch.cuda.get_device_name(0))"
} 2>&1 | tee "$OUT/gpu_env.txt"

timeout 170 "$PY" -m pytest -q -m gpu -p no:cacheprovider -o addopts="" \
    tests/integration/test_gpu.py tests/unit/data/test_gpu_views.py 2>&1 | tee "$OUT/pytest_gpu.log"
echo "pytest -m gpu exit: ${PIPESTATUS[0]}" | tee -a "$OUT/pytest_gpu.log"

timeout "${B5_LIMIT:-400}" "$PY" benchmarks/b5_gpu.py --compile "$@" 2>&1 \
    | grep -v -e "Tip:" -e "^[│┃┏┡└]" | tee "$OUT/b5.log"
echo "b5 exit: ${PIPESTATUS[0]}" | tee -a "$OUT/b5.log"
