#!/usr/bin/env bash
# Wheels for a GPU machine whose Python 3.12 has torch, torchvision, Lightning, timm,
# scikit-learn and scipy but not hydra-core, omegaconf, antlr4 or kornia: into .whl/
# (git-ignored), for benchmarks/gpu_session.sh. kornia 0.9.2 is the version tested here:
# its augmentations draw their parameters on the host and blend with torch.where, so
# GPU views make no step wait for the GPU. antlr4-python3-runtime 4.9.3 exists only as
# a source archive; it is pure Python, so a wheel built here works there.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
    --platform manylinux2014_x86_64)
for spec in hydra-core==1.3.8 omegaconf==2.3.1 kornia==0.9.2 kornia_rs==0.2.0; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp "${PLATFORMS[@]}" -d .whl "$spec"
done
python3 -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3
ls -la .whl
