"""`simclr-prepare SRC DEST`: an image folder turned into LitData shards for `data=stream`.

The folder is read and screened exactly as `data=folder` reads it
(:func:`simclr.data.folder.folder_splits`): labeled (``train/<class>/*`` and
optionally ``test/<class>/*``) or unlabeled (a flat folder). Each split is written
with ``litdata.optimize`` (parallel workers, a progress bar) to its own LitData
dataset under DEST, one item per image:

    {"image": <the file's bytes, JPEG/PNG/... as encoded>, "label": int (-1: none),
     "split": "train" | "test" | "unlabeled", "name": <path relative to SRC>}

and ``DEST/simclr_shards.json`` records the classes and the splits' sizes. Images
stay encoded (decoding happens in the training workers, as for a folder), so the
shards are about the size of the folder. DEST may be a local directory or an
object-store URI that LitData writes to (``s3://``, ``gs://``); an existing DEST is
refused unless ``force=True``, which replaces only an earlier shard set, once the new
one is written (simclr/runs/output.py, rule 3). DEST apart from SRC (rule 4).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simclr.data.splits import DataSplits
from simclr.errors import ConfigError, DataError, OutputError
from simclr.runs.output import Made, check_apart, shard_set_files, swap_in

_OPTIMIZER_WORKERS = "DATA_OPTIMIZER_NUM_WORKERS"  # litdata.optimize exports it

MANIFEST = "simclr_shards.json"
FORMAT_VERSION = 1
PRETRAIN_SPLITS = ("train", "unlabeled")  # whichever the folder has (never both)
DEFAULT_CHUNK_BYTES = "64MB"


@dataclass
class PrepareResult:
    """What :func:`prepare_shards` wrote."""

    dest: str
    counts: dict[str, int]
    classes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _is_remote(path: str) -> bool:
    return "://" in path


def split_dir(root: str, split: str) -> str:
    """Where split `split` of the shard dataset at `root` is (a path or a URI)."""
    return f"{root.rstrip('/')}/{split}"


def _encode(item: tuple[str, int, str, str]) -> dict[str, Any]:
    """One image file as one shard item (runs in litdata's worker processes)."""
    path, label, split, name = item
    with open(path, "rb") as f:
        return {"image": f.read(), "label": int(label), "split": split, "name": name}


SPLITS = ("train", "test", "unlabeled")
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2}
_UNITS |= {"g": 1000**3, "gb": 1000**3, "t": 1000**4, "tb": 1000**4}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*")


def chunk_size(text: str | int) -> int:
    """`--chunk-bytes` as a number of bytes (`64MB`, `512kb`, `1e6` is not a size)."""
    match = _SIZE.fullmatch(str(text).lower())
    size = (
        int(float(match.group(1)) * _UNITS[match.group(2)])
        if match and match.group(2) in _UNITS
        else 0
    )
    if size < 1:
        raise ConfigError(
            f"--chunk-bytes={text}: expected a size above 0 such as 64MB, 512KB or 1GB "
            "(units B, KB, MB, GB, TB)"
        )
    return size


def _old_shards(dest: str, force: bool) -> list[Path] | None:
    """The files of the shard set `force` would replace at `dest`; None if DEST is new or empty.

    Refuses a DEST that is a file, holds anything without `force`, or, with `force`,
    anything but a shard set (simclr/runs/output.py, rule 3).
    """
    path = Path(dest).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputError(f"DEST={dest}: a file, not a directory")
    if not path.is_dir() or not any(path.iterdir()):
        return None
    if not force:
        raise OutputError(
            f"DEST={dest} already exists and is not empty; choose another DEST or pass "
            "--force to replace it"
        )
    files = shard_set_files(path, MANIFEST, SPLITS)
    if files is None:
        held = sorted(p.name for p in path.iterdir())
        raise OutputError(
            f"DEST={dest} holds {', '.join(held[:3])}{', ...' if len(held) > 3 else ''}, not only "
            "shards of simclr-prepare; --force replaces only an earlier shard set (index.json "
            "and its chunk files per split): choose another DEST"
        )
    return files


def _items(splits: DataSplits, src: Path) -> dict[str, list[tuple[str, int, str, str]]]:
    found: dict[str, list[tuple[str, int, str, str]]] = {}
    for split in ("train", "test", "unlabeled"):
        dataset = getattr(splits, split)
        if dataset is None:
            continue
        found[split] = [
            (str(p), int(label), split, str(Path(p).relative_to(src)))
            for p, label in zip(dataset.paths, dataset.labels, strict=True)
        ]
    return found


def prepare_shards(
    src: str | Path,
    dest: str,
    *,
    workers: int | None = None,
    force: bool = False,
    chunk_bytes: str = DEFAULT_CHUNK_BYTES,
    on_bad_image: str = "fail",
    progress: bool = True,
) -> PrepareResult:
    """Write the image folder `src` as LitData shards under `dest`.

    Args:
        src: a labeled (``train/``, ``test/``) or unlabeled image folder.
        dest: a new (or empty) directory, or an object-store URI.
        workers: litdata worker processes (default: the CPU count).
        force: replace an existing `dest`.
        chunk_bytes: target size of one shard file.
        on_bad_image: "fail" (name the first unreadable file) or "skip" it.
        progress: litdata's progress bar.

    Raises:
        DataError: `src` is missing, empty or holds no images (one line).
        OutputError: `dest` exists and `force` is not set.
    """
    from simclr.data.folder import folder_splits

    source = Path(src).expanduser()
    if not source.is_dir():
        raise DataError(f"SRC={src}: no such directory; expected an image folder")
    size = chunk_size(chunk_bytes)
    old = None
    if _is_remote(dest):
        check_remote_writable(dest)
    else:
        check_apart("DEST", Path(dest), {"SRC": source})
        old = _old_shards(dest, force)
    try:
        splits = folder_splits(str(source), on_bad_image)  # screens every file first
    except DataError as err:
        # The folder reader's words, with this command's names for its inputs.
        message = str(err).replace(f"data.root={source}", f"SRC={src}", 1)
        message = message.replace("data.on_bad_image=skip", "--on-bad-image skip")
        raise DataError(message) from None
    items = _items(splits, source)
    workers = max(1, int(workers or os.cpu_count() or 1))
    counts = {split: len(inputs) for split, inputs in items.items()}
    manifest = {
        "format": FORMAT_VERSION,
        "classes": list(splits.classes),
        "counts": counts,
        "source": str(source.resolve()),
        "skipped": list(splits.skipped),
    }
    if _is_remote(dest):
        _write_shards(items, dest, workers, size, progress, force, manifest)
    else:
        _write_local(items, Path(dest).expanduser(), old, (workers, size, progress), manifest)
    return PrepareResult(dest, counts, list(splits.classes), list(splits.skipped))


def _write_local(
    items: dict[str, list[tuple[str, int, str, str]]],
    dest: Path,
    old: list[Path] | None,
    how: tuple[int, int, bool],
    manifest: dict[str, Any],
) -> None:
    """Write the shards into `dest`; the old shard set `old` is replaced only once the
    new one is complete, and a failure removes what this call made and nothing else."""
    target = Made.at(dest, "DEST")
    staging = dest / f".simclr-prepare-{os.getpid()}" if old is not None else dest
    try:
        _write_shards(items, str(staging), *how, False, manifest)
        if old is not None:
            swap_in(dest, staging, old)
    except BaseException:
        target.undo()
        raise


def _write_shards(
    items: dict[str, list[tuple[str, int, str, str]]],
    dest: str,
    workers: int,
    size: int,
    progress: bool,
    overwrite: bool,
    manifest: dict[str, Any],
) -> None:
    from litdata import optimize

    with _process_state_kept():
        for split, inputs in items.items():
            optimize(
                fn=_encode,
                inputs=inputs,
                output_dir=split_dir(dest, split),
                num_workers=min(workers, len(inputs)),
                chunk_bytes=size,
                reorder_files=False,  # items in folder order; training shuffles anyway
                mode="overwrite" if overwrite else None,
                verbose=progress,
            )
    _write_text(split_dir(dest, MANIFEST), json.dumps(manifest, indent=1) + "\n")


@contextmanager
def _process_state_kept() -> Iterator[None]:
    """Undo what ``litdata.optimize`` changes in the calling process.

    It sets the process-wide multiprocessing start method to ``spawn`` (force=True)
    and exports ``DATA_OPTIMIZER_NUM_WORKERS``. Left so, every DataLoader made
    later in the same process spawns its workers, re-importing torch each time: a
    ``data=stream`` loader, whose workers start anew each epoch, then ran 7x slower
    (benchmarks/b7_stream_loader.py writes its shards, then measures).
    """
    method = multiprocessing.get_start_method(allow_none=True)
    workers = os.environ.get(_OPTIMIZER_WORKERS)
    try:
        yield
    finally:
        multiprocessing.set_start_method(method, force=True)
        if workers is None:
            os.environ.pop(_OPTIMIZER_WORKERS, None)
        else:
            os.environ[_OPTIMIZER_WORKERS] = workers


def _write_text(path: str, text: str) -> None:
    if _is_remote(path):
        import fsspec

        with fsspec.open(path, "w") as f:
            f.write(text)
        return
    tmp = Path(f"{path}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def check_shard_files(root: str, splits: list[str], key: str = "data.root") -> None:
    """DataError naming the first split whose `index.json` is missing or unreadable, or
    whose chunk file is missing or not the size the index records (a copy cut short).

    Local shards only (remote ones are read as LitData reads them). Bytes changed in
    place at the same size are not found here: that needs the chunks read whole.
    """
    if _is_remote(root):
        return
    for split in splits:
        index = Path(split_dir(root, split)).expanduser() / "index.json"
        try:
            chunks = json.loads(index.read_text())["chunks"]
            sizes = {str(c["filename"]): int(c["chunk_bytes"]) for c in chunks}
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(
                f"{key}={root}: {index} is missing or damaged ({getattr(err, 'strerror', None) or err}); "
                "prepare the shards again with simclr-prepare --force"
            ) from None
        for name, size in sizes.items():
            chunk = index.with_name(name)
            found = chunk.stat().st_size if chunk.is_file() else None
            if found != size:
                what = (
                    "missing" if found is None else f"{found:,} bytes where the index says {size:,}"
                )
                raise DataError(
                    f"{key}={root}: shard {chunk} is {what}; prepare the shards again with "
                    "simclr-prepare --force"
                )


def check_remote_writable(dest: str) -> None:
    """ConfigError when the file system of an object-store URI cannot be used here."""
    import fsspec

    protocol = dest.split("://", 1)[0]
    try:
        fsspec.get_filesystem_class(protocol)
    except (ImportError, ValueError) as err:
        first = str(err).strip().splitlines()[0]
        raise ConfigError(
            f"DEST={dest}: {protocol}:// cannot be written from here ({first})"
        ) from None


def read_manifest(root: str, key: str = "data.root") -> dict[str, Any]:
    """The manifest of the shard dataset at `root`; DataError (one line) if there is none."""
    path = split_dir(root, MANIFEST)
    try:
        if _is_remote(path):
            import fsspec

            with fsspec.open(path, "r") as f:
                text = f.read()
        else:
            if not Path(root).expanduser().is_dir():
                raise DataError(f"{key}={root}: no such directory")
            text = Path(path).expanduser().read_text()
        manifest: dict[str, Any] = json.loads(text)
    except (OSError, ValueError) as err:
        raise DataError(
            f"{key}={root}: not shards written by simclr-prepare ({MANIFEST}: "
            f"{getattr(err, 'strerror', None) or err}); run simclr-prepare SRC {root} first"
        ) from None
    if manifest.get("format") != FORMAT_VERSION:
        raise DataError(
            f"{key}={root}: shard format {manifest.get('format')!r}, expected {FORMAT_VERSION}; "
            "prepare the folder again with this version's simclr-prepare"
        )
    return manifest
