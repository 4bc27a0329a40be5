"""Starting the training workers: ours (our venv) and the peers' (their own venvs).

Each worker is a fresh process, so its peak memory is its own and nothing one run
caches (threads, allocator pools, page cache aside) leaks into the next.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from harness.common import (
    BENCH_DIR,
    HARNESS_DIR,
    OUR_PYTHON,
    WORK_DIR,
    log,
    peer_python,
    peer_state,
    run_worker,
)

# The CPU case of B1/B2/scaling: ResNet-18 with the CIFAR stem, a 2-layer 512-512-128
# head (bolts' and lightly's shape), SimCLR's CIFAR views (s=0.5, no blur).
CPU_CASE = [
    "experiment=none",
    "data=folder",
    "encoder=resnet18",
    "encoder.stem=cifar",
    "head=v1",
    "head.hidden_dim=512",
    "augment=cifar",
    "online_probe.enabled=false",
    "eval=none",
    "trainer.enable_progress_bar=false",
]


def ours_case(data: Path, image_size: int, batch: int, epochs: int, workers: int) -> list[str]:
    """Hydra overrides of the CPU case on `data`."""
    return [
        *CPU_CASE,
        f"data.root={data}",
        f"data.image_size={image_size}",
        f"data.batch_size={batch}",
        f"data.num_workers={workers}",
        f"trainer.max_epochs={epochs}",
    ]


def fresh_dir(name: str) -> Path:
    """An empty directory under benchmarks/.work/runs/ (a previous one is removed)."""
    path = WORK_DIR / "runs" / name
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def run_ours(
    mode: str,
    overrides: list[str],
    *,
    name: str,
    warmup: int,
    steps: int = 5,
    budget_s: float | None = None,
    timeout: float = 3600,
) -> dict[str, Any]:
    """harness/ours_train.py in `mode` ("pretrain", "model" or "loader")."""
    argv: list[Any] = [OUR_PYTHON, HARNESS_DIR / "ours_train.py", mode, "--out", fresh_dir(name)]
    argv += ["--warmup-steps", warmup, "--steps", steps]
    if budget_s:
        argv += ["--budget-s", budget_s]
    log(f"ours {mode} ({name})")
    return run_worker([*argv, "--", *overrides], timeout=timeout)


def run_peer(
    peer: str,
    *,
    data: Path,
    name: str,
    image_size: int,
    batch: int,
    epochs: int,
    workers: int,
    warmup: int,
    max_steps: int = -1,
    budget_s: float | None = None,
    save_encoder: bool = False,
    precision: str = "32",
    timeout: float = 3600,
) -> dict[str, Any]:
    """benchmarks/peers/<peer>_train.py in the peer's venv; an error dict if not installed.

    `precision` is passed to the peer's Lightning Trainer as that version spells it."""
    python = peer_python(peer)
    if python is None:
        return {"error": peer_state(peer)}
    out = fresh_dir(name)
    argv: list[Any] = [python, BENCH_DIR / "peers" / f"{peer}_train.py", "--data", data]
    argv += ["--out", out, "--image-size", image_size, "--batch-size", batch]
    argv += ["--epochs", epochs, "--workers", workers, "--warmup-steps", warmup]
    argv += ["--max-steps", max_steps, "--precision", precision]
    if budget_s:
        argv += ["--budget-s", budget_s]
    if save_encoder:
        argv += ["--save-encoder", out / "encoder.pt"]
    log(f"{peer} train ({name}, precision {precision})")
    result = run_worker(argv, timeout=timeout)
    if save_encoder and "error" not in result:
        result["encoder"] = str(out / "encoder.pt")
    return result
