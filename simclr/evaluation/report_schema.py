"""The schema of report.json (documented in docs/report-schema.md).

The dataclasses are the schema: `load_report` merges a file into them with
OmegaConf, which rejects unknown keys and wrong types and, through MISSING,
absent required keys. Bump SCHEMA_VERSION on any change a reader would notice.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from simclr.errors import OutputError

SCHEMA_VERSION = 5  # 2: class counts; 3: `training` and `features_hardware`; 4: `training.step`;
# 5: `training.view_sizes`
# Versions `load_report` reads: version 1 lacks the class counts (they read as None),
# versions 1-2 lack `training` and `features_hardware` (None), 1-3 `training.step` (None).
READABLE_VERSIONS = (1, 2, 3, 4, 5)


@dataclass
class ResultRow:
    """Accuracy (fraction in [0, 1]) of one representation x evaluator x label fraction."""

    representation: str = MISSING  # simclr | random_init | raw_pixels | supervised
    evaluator: str = MISSING  # linear | mlp | knn | finetune
    fraction: float = MISSING  # of the labeled train split
    mean: float = MISSING
    std: float = MISSING  # sample standard deviation over seeds; 0 for one seed
    n_seeds: int = MISSING
    n_labels: int = MISSING  # labeled examples in the subset
    accuracies: list[float] = MISSING  # one per seed, seeds 0..n_seeds-1
    notes: list[str] = field(default_factory=list)


@dataclass
class SeedRun:
    """One fit: the hyperparameters chosen inside the labeled subset, and its accuracy."""

    representation: str = MISSING
    evaluator: str = MISSING
    fraction: float = MISSING
    seed: int = MISSING
    n_labels: int = MISSING
    accuracy: float = MISSING
    chosen: dict[str, Any] = field(default_factory=dict)


@dataclass
class Headline:
    """The single number a sweep sorts by (SimCLR, one evaluator, one fraction)."""

    representation: str = MISSING
    evaluator: str = MISSING
    fraction: float = MISSING
    mean: float | None = None  # None when that cell was not evaluated
    std: float | None = None
    n_seeds: int = 0


@dataclass
class DataInfo:
    """The labeled evaluation data."""

    name: str = MISSING
    source: str = MISSING
    n_train: int = MISSING
    n_test: int = MISSING
    classes: list[str] = MISSING
    # Examples per class, in label order (None in version-1 reports): the chance levels
    # of report.md and the figures come from these (simclr.evaluation.wording).
    train_counts: list[int] | None = None
    test_counts: list[int] | None = None


@dataclass
class Timing:
    """Wall-clock seconds."""

    pretrain_seconds: float | None = None  # None when the encoder was not trained here
    features_seconds: float = MISSING
    probes_seconds: float = MISSING
    eval_seconds: float = MISSING


@dataclass
class Hardware:
    """Precision and memory format chosen for a device, and why (simclr/config/hardware.py)."""

    device: str = MISSING  # cpu | cuda | ...
    precision: str = MISSING  # Lightning's name: 32-true | bf16-mixed | ...
    precision_reason: str = MISSING
    channels_last: bool = MISSING
    channels_last_reason: str = MISSING


@dataclass
class Step:
    """How the training step ran, and why (simclr/config/step.py)."""

    compile: bool = MISSING  # torch.compile of encoder, head and loss
    compile_reason: str = MISSING
    views: str = MISSING  # cpu | gpu: where colour jitter, grayscale and blur ran
    views_reason: str = MISSING
    decode: str = MISSING  # cpu | gpu: where JPEG files were decoded
    decode_reason: str = MISSING
    compile_seconds: float | None = None  # the first compiled step, compiling included


@dataclass
class Training:
    """How this run pretrained the encoder: hardware choices, budget and schedule."""

    hardware: Hardware = field(default_factory=Hardware)
    step: Step | None = None  # None in reports before version 4
    max_time: str | None = None  # trainer.max_time as given; None without a budget
    budget_seconds: float | None = None
    steps_per_epoch: int = MISSING  # optimizer steps
    planned_steps: int = MISSING  # the schedule's length (re-planned under a budget)
    planned_epochs: float = MISSING
    steps: int = MISSING  # optimizer steps taken (a resumed run counts its earlier ones)
    epochs: float = MISSING  # steps / steps_per_epoch
    # Under progressive resizing (data.start_size): [size, batches] for each view size in
    # the order they ran; None where every view had data.image_size.
    view_sizes: list[list[int]] | None = None


@dataclass
class Report:
    """Everything in report.json."""

    schema_version: int = MISSING
    created: str = MISSING  # ISO 8601, local time with offset
    command: str = MISSING
    config_hash: str = MISSING  # sha256 of the resolved config as YAML
    preset: str = MISSING
    checkpoint: str | None = None
    encoder: str = MISSING
    feature_dim: int = MISSING
    data: DataInfo = field(default_factory=DataInfo)
    versions: dict[str, str] = field(default_factory=dict)
    machine: dict[str, str] = field(default_factory=dict)
    timing: Timing = field(default_factory=Timing)
    training: Training | None = None  # None when the encoder was not trained by this run
    features_hardware: Hardware | None = None  # how the SimCLR features were extracted
    headline: Headline = field(default_factory=Headline)
    results: list[ResultRow] = field(default_factory=list)
    runs: list[SeedRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


def report_to_dict(report: Report) -> dict[str, Any]:
    """Plain JSON-ready dict of a report."""
    return asdict(report)


def validate_report(data: dict[str, Any], source: str = "report.json") -> Report:
    """Check `data` against the schema; return it as a `Report`, or raise OutputError."""
    version = data.get("schema_version")
    if version not in READABLE_VERSIONS:
        known = ", ".join(map(str, READABLE_VERSIONS))
        raise OutputError(f"{source}: schema_version={version!r}, this reader knows {known}")
    try:
        report = _checked(Report, data)
    except OmegaConfBaseException as err:
        first = str(err).splitlines()[0]
        raise OutputError(f"{source}: does not match the report schema: {first}") from None
    assert isinstance(report, Report)
    return report


# A string OmegaConf would read as syntax (`${...}`, its escapes): checked as this one.
_PLAIN = "text"


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return _PLAIN if "${" in value or "\\" in value else value
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _restored(checked: Any, given: Any) -> Any:
    """`checked` with each string the user's own again (`given` is what was checked)."""
    if isinstance(checked, str) and isinstance(given, str):
        return given
    if is_dataclass(checked) and isinstance(given, dict):
        for f in fields(checked):
            if f.name in given:
                setattr(checked, f.name, _restored(getattr(checked, f.name), given[f.name]))
        return checked
    if isinstance(checked, list) and isinstance(given, list):
        return [_restored(c, g) for c, g in zip(checked, given, strict=True)]
    if isinstance(checked, dict) and isinstance(given, dict):
        return {k: _restored(v, given.get(k)) for k, v in checked.items()}
    return checked


def _checked(schema: type, data: dict[str, Any]) -> Any:
    """`data` checked against the dataclass `schema` by OmegaConf, its strings kept as data.

    Class names, paths and commands are text: a class folder named `${oc.env:X}` must
    not be resolved. OmegaConf checks a copy whose syntax-like strings are plain
    (a string is a string), and the result gets the real strings back.
    """
    merged = OmegaConf.merge(OmegaConf.structured(schema), _masked(data))
    return _restored(OmegaConf.to_object(merged), data)


def as_training(data: dict[str, Any]) -> Training:
    """`data` (as `simclr.training.trainer.training_summary` gives it) checked into a `Training`."""
    training = _checked(Training, data)
    assert isinstance(training, Training)
    return training


def load_report(path: Path) -> Report:
    """Read and validate a report.json."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise OutputError(f"{path}: cannot read a report: {err}") from None
    if not isinstance(data, dict):
        raise OutputError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return validate_report(data, str(path))
