"""Shared helpers of the benchmark scripts: machine, versions, timing, worker runs, results.

Every benchmark writes ``benchmarks/results/<name>.json`` through :func:`write_result`,
so all result files share these top-level fields:

    name, title, command, machine{label, cpu, cores, memory_gib, gpu, os, python},
    cpu, gpu, versions{package: version}, date, figures{...}, rows[{...}],
    ratios{...}, summary[{benchmark, measure, ratio, goal, context}], notes[...]

``summary`` rows are what ``benchmarks/make_table.py`` puts in the README table (a ratio is
the headline, absolute figures are context). Only the standard library is used
at import time, so peer-side scripts and GPU scripts can import this file too.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

HARNESS_DIR = Path(__file__).resolve().parent  # the worker scripts are here
BENCH_DIR = HARNESS_DIR.parent  # the entry points, results/, .work/, .peers/
REPO = BENCH_DIR.parent
RESULTS_DIR = Path(os.environ.get("BENCH_RESULTS", BENCH_DIR / "results"))
WORK_DIR = Path(os.environ.get("BENCH_WORK", BENCH_DIR / ".work"))
PEERS_DIR = Path(os.environ.get("PEERS_DIR", BENCH_DIR / ".peers"))
PEERS = ("bolts", "lightly")
# bf16 as each peer's Lightning spells it: PL 1.9.5 (bolts) "bf16", Lightning 2 "bf16-mixed".
PEER_BF16 = {"bolts": "bf16", "lightly": "bf16-mixed"}
# Peer arms of the side-by-side benchmarks: arm -> (peer, precision). Each peer at its
# documented precision (float32) and in bf16 through its own Trainer, so a table shows
# what is the toolkit and what is the precision.
PEER_ARMS = {peer: (peer, "32") for peer in PEERS} | {
    f"{peer}_bf16": (peer, PEER_BF16[peer]) for peer in PEERS
}
OUR_PYTHON = Path(sys.executable)
BASE_PACKAGES = ("torch", "torchvision", "pytorch-lightning", "simclr", "timm", "numpy", "pillow")


# --- where and with what ---------------------------------------------------------------


def add_workload_args(parser: Any, rounds: int) -> None:
    """The pretraining workload B1 and B2 share: a generated JPEG folder and its run."""
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="steps left out of each rate")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (our default)")
    parser.add_argument("--rounds", type=int, default=rounds)


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_model() -> str | None:
    """``"<count>x <name>"`` of the visible CUDA devices, or None without CUDA."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
    return f"{torch.cuda.device_count()}x {', '.join(names)}"


def memory_gib() -> float:
    """Physical memory of the machine in GiB."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def machine() -> dict[str, Any]:
    """What the figures were measured on; ``label`` names the machine in tables."""
    gpu = gpu_model()
    cores = os.cpu_count() or 0
    label = f"GPU {gpu}" if gpu else f"CPU {cores} cores ({cpu_model()})"
    return {
        "label": label,
        "cpu": cpu_model(),
        "cores": cores,
        "memory_gib": round(memory_gib(), 1),
        "gpu": gpu,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def versions(extra: Iterable[str] = ()) -> dict[str, str | None]:
    """Installed versions of the base packages and of `extra` (None when missing)."""
    found: dict[str, str | None] = {}
    for name in (*BASE_PACKAGES, *extra):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that ran this benchmark, relative to the repository root."""
    args = list(sys.argv if argv is None else argv)
    script = Path(args[0]).resolve() if args else Path("?")
    try:
        shown = str(script.relative_to(REPO))
    except ValueError:
        shown = str(args[0]) if args else "?"
    return shlex.join(["python", shown, *args[1:]])


def now() -> str:
    """The local date and time, ISO 8601 with the UTC offset."""
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


# --- timing and memory -----------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    """Median of the values (NaN for none)."""
    values = [float(v) for v in values]
    return statistics.median(values) if values else float("nan")


def spread(values: Iterable[float]) -> dict[str, float | int]:
    """Median, min, max and count: what a repeated measurement reports."""
    values = [float(v) for v in values]
    if not values:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"median": median(values), "min": min(values), "max": max(values), "n": len(values)}


def time_repeats(
    fn: Callable[[], Any],
    repeats: int,
    warmup: int = 1,
    sync: Callable[[], None] | None = None,
) -> list[float]:
    """Wall-clock seconds of `repeats` calls of `fn` after `warmup` untimed calls.

    `sync` (e.g. ``torch.cuda.synchronize``) runs before each clock read, so
    asynchronous GPU work is counted in the call that queued it.
    """
    sync = sync or (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def peak_rss_mib(children: bool = False) -> float:
    """Peak resident memory of this process (or of its waited-for children), MiB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    kib = resource.getrusage(who).ru_maxrss  # KiB on Linux
    return kib / 1024.0


def current_rss_mib() -> float:
    """Resident memory of this process now, MiB (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def peak_cuda_mib() -> float | None:
    """``torch.cuda.max_memory_allocated`` in MiB, or None without CUDA."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**20


# --- worker processes and peers --------------------------------------------------------


def peer_python(name: str) -> Path | None:
    """The python of peer environment `name` when it installed, else None."""
    env = PEERS_DIR / name
    python = env / "bin" / "python"
    return python if (env / ".installed").is_file() and python.exists() else None


def peer_state(name: str) -> str:
    """``"installed"`` or ``"not installed: <why>"`` for a peer environment."""
    if peer_python(name) is not None:
        return "installed"
    failed = PEERS_DIR / f"{name}.failed"
    if failed.is_file():
        reason = failed.read_text().strip().splitlines()
        return f"not installed: {reason[-1] if reason else 'install failed'}"
    return "not installed: run `make bench-peers` (benchmarks/peers/install.sh)"


def peer_version(name: str, package: str) -> str | None:
    """Version of `package` in a peer environment, from its install stamp (pip freeze)."""
    stamp = PEERS_DIR / name / ".installed"
    if not stamp.is_file():
        return None
    for line in stamp.read_text().splitlines():
        pkg, _, version = line.partition("==")
        if pkg.strip().lower().replace("_", "-") == package.lower().replace("_", "-"):
            return version.strip()
    return None


def run_worker(
    argv: Sequence[Any], timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run a worker script and return the JSON object on the last line of its stdout.

    A worker that fails, times out or prints no JSON gives ``{"error": "<one line>"}``
    instead of raising, so one broken peer leaves the other rows standing.
    """
    # benchmarks/ on the path: the worker imports `harness.<module>` (peers' ones too).
    merged = {**os.environ, "PYTHONPATH": str(BENCH_DIR), **(env or {})}
    try:
        done = subprocess.run(
            [str(a) for a in argv],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=merged,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(done.stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                result: dict[str, Any] = json.loads(line)
                return result
            except json.JSONDecodeError:
                break
    tail = [x for x in (done.stderr or done.stdout).strip().splitlines() if x.strip()]
    return {"error": f"exit {done.returncode}: {tail[-1] if tail else 'no output'}"}


def log(message: str) -> None:
    """Progress line on stderr, with the time, so long runs show where they are."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- results ---------------------------------------------------------------------------


def write_result(
    name: str,
    *,
    title: str,
    figures: dict[str, Any] | None = None,
    rows: list[dict[str, Any]] | None = None,
    ratios: dict[str, Any] | None = None,
    summary: list[dict[str, Any]] | None = None,
    notes: Sequence[str] = (),
    settings: dict[str, Any] | None = None,
    extra_versions: dict[str, Any] | None = None,
    command: str | None = None,
) -> Path:
    """Write ``RESULTS_DIR/<name>.json`` with the shared fields and return its path."""
    info = machine()
    record = {
        "name": name,
        "title": title,
        "command": command or command_line(),
        "machine": info,
        "cpu": info["cpu"],
        "gpu": info["gpu"],
        "versions": {**versions(), **(extra_versions or {})},
        "date": now(),
        "settings": settings or {},
        "figures": figures or {},
        "rows": rows or [],
        "ratios": ratios or {},
        "summary": summary or [],
        "notes": list(notes),
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str) + "\n")
    tmp.replace(path)
    return path


def load_results(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every ``<name>.json`` in the results directory, by name."""
    directory = directory or RESULTS_DIR
    return {p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def fmt(value: float | None, digits: int = 2) -> str:
    """A figure for a table: fixed digits, or an em dash when missing."""
    if value is None or value != value:  # NaN
        return "—"
    return f"{value:.{digits}f}"
