"""Prove that `load_encoder` reads real lightning-bolts 0.7 SimCLR checkpoints.

Run with our venv after `make_bolts_checkpoint.py` (bolts venv) wrote OUT_DIR:

    .venv/bin/python benchmarks/peers/check_bolts_interop.py [OUT_DIR]

For every variant it compares, on the same fixed input, the features and
projections of `load_encoder(<variant>.ckpt, with_head=True)` with those bolts'
own model gave, and the features after a round trip through `export_encoder`.
Exits 1 if any difference exceeds 1e-5.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from simclr.hub import export_encoder, load_encoder

TOLERANCE = 1e-5


def check(directory: Path, name: str, scratch: Path) -> float:
    x = torch.from_numpy(np.load(directory / f"{name}.input.npy"))
    want_h = np.load(directory / f"{name}.features.npy")
    want_z = np.load(directory / f"{name}.projection.npy")
    encoder, head = load_encoder(directory / f"{name}.ckpt", with_head=True)
    exported = load_encoder(
        export_encoder(directory / f"{name}.ckpt", scratch / f"{name}.safetensors")
    )
    with torch.no_grad():
        h = encoder(x)
        z = head(h)
        h_exported = exported(x)
    errors = {
        "features": float(np.abs(h.numpy() - want_h).max()),
        "projection": float(np.abs(z.numpy() - want_z).max()),
        "exported": float(np.abs(h_exported.numpy() - want_h).max()),
    }
    meta = encoder.meta
    print(
        f"{name}: {meta['arch']} stem={meta['stem']} dim={meta['feature_dim']} "
        + " ".join(f"max|{k}-bolts|={v:.1e}" for k, v in errors.items())
    )
    return max(errors.values())


def main() -> int:
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/.work/bolts")
    names = sorted(p.name[: -len(".ckpt")] for p in directory.glob("*.ckpt"))
    if not names:
        print(
            f"{directory}: no .ckpt files; run make_bolts_checkpoint.py with the bolts venv first"
        )
        return 1
    with tempfile.TemporaryDirectory() as scratch:
        worst = max(check(directory, name, Path(scratch)) for name in names)
    print(
        f"worst difference {worst:.1e} (tolerance {TOLERANCE:.0e}): {'OK' if worst <= TOLERANCE else 'FAIL'}"
    )
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    raise SystemExit(main())
