"""Every field of every schema, walked with invalid values through `simclr-pretrain`.

The fields are found by introspecting the dataclasses of simclr/config/schema.py
(RunConfig and everything nested in it), so a field added without a rule fails
`test_every_field_has_invalid_values_or_a_reason`. Each field's invalid values come from
this file's own table (per type, plus the field's own bounds), not from the rules
in simclr/config/validate.py.

* Every input is checked the way `simclr-pretrain`'s preflight checks a job: composed
  (the YAML composed once per set of config groups, the value applied as Hydra's
  compose applies it) and given to the command's own check; it must be a one-line
  error naming the key.
* One input per field goes through the console entry point in this process and must
  give exit status 2, exactly one line on stderr, `simclr-pretrain: error: ...` naming
  the key, no traceback, and no file written: the output directory is never made, and
  the test's directory is byte-for-byte as before. The job itself (`_pretrain`) is
  replaced by a recorder, so a value that slipped through would be seen reaching it,
  without training anything. (Composing is ~0.2 s a command: every input through the
  console would take minutes.)
* A few go through the real console script, in subprocesses.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import hashlib
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, open_dict
from omegaconf.errors import OmegaConfBaseException

from simclr.config.compose import compose_checked, explain_composition_error
from simclr.config.schema import RunConfig
from simclr.console import pretrain
from simclr.console.app import CONF_DIR, CONFIG_NAME
from simclr.errors import SimclrError
from tests.conftest import REPO, write_labeled_folder
from tests.support.cli_harness import run_cli, tiny_run

PROGRAM = "simclr-pretrain"
SCRIPT = Path(sys.executable).with_name(PROGRAM)

# A valid run (see test_the_base_command_line_is_valid); each case changes one thing.
BASE = tiny_run()

# Fields for which no value is invalid, each with the reason.
EXEMPT = {
    # Labels shown in the report; any string names the preset that set the run up.
    "augment.name": "a label of the augment preset for the report; any string is fine",
    "eval.name": "a label of the eval preset for the report; any string is fine",
    "preset": "a label of the experiment preset for the report; any string is fine",
    # The node itself: its fields are walked as eval.data.* below.
    "eval.data": "walked field by field as eval.data.* (and null means: the pretraining data)",
}

GENERIC_FLOAT = ["nan", "inf", "-1.0"]

# Invalid values beyond those of the field's type (a field listed here with `None`
# as its first item gets only these, because a generic value is valid for it).
EXTRA: dict[str, list[str | None]] = {
    "data.root": ["''"],  # data=folder: a directory must be named
    "data.image_size": ["0"],
    "data.start_size": ["0"],
    "data.full_size_share": ["0.0", "1.5"],
    "data.batch_size": ["1", "0"],
    "data.download": ["true"],  # offline: asking for it is the error
    "data.test_fraction": ["0.0", "1.0"],
    "data.max_image_pixels": ["0"],
    "data.split_seed": ["4294967296"],
    "augment.crop_scale": ["[0.5]", "[0.0,1.0]", "[0.5,1.5]", "[0.9,0.2]", "[nan,1.0]"],
    "augment.crop_ratio": ["[0.75]", "[0.0,1.0]", "[1.0,inf]", "[2.0,1.0]"],
    "augment.hflip_p": ["1.5"],
    "augment.jitter_strength": ["2.6"],  # the hue jitter 0.2 x 2.6 would be above 0.5
    "augment.jitter_p": ["1.5"],
    "augment.grayscale_p": ["1.5"],
    "augment.blur_p": ["1.5"],
    "augment.blur_kernel_fraction": ["0.0", "1.5"],
    "augment.blur_sigma": ["[1.0]", "[0.0,1.0]", "[1.0,inf]", "[2.0,1.0]"],
    "augment.mean": ["[0.5,0.5]", "[nan,0.5,0.5]"],
    "augment.std": ["[0.5,0.5]", "[0.0,0.5,0.5]", "[inf,0.5,0.5]"],
    "augment.eval_resize_fraction": ["0.0", "1.5"],
    "encoder.timm_name": ["''", "no_such_model_anywhere"],
    "encoder.channels_last": ["maybe", "1"],
    "encoder.compile": ["maybe", "1"],
    "head.hidden_dim": ["0"],
    "head.output_dim": ["0"],
    "loss.temperature": ["0.0"],
    "loss.chunk_size": ["1"],
    "optim.lr": ["0.0"],
    "optim.momentum": ["1.0"],
    "optim.trust_coefficient": ["0.0"],
    "optim.betas": ["[0.9]", "[0.9,1.0]", "[-0.1,0.999]", "[nan,0.999]"],
    "optim.final_lr_fraction": ["1.5"],
    # -1 is Lightning's "no limit" for these two
    "trainer.max_epochs": [None, "0", "-2"],
    "trainer.max_steps": [None, "0", "-2"],
    "trainer.accelerator": ["bogus"],
    "trainer.devices": ["0", "-2", "bogus", "[]", "[0,0]", "[-1]"],
    "trainer.num_nodes": ["0"],
    "trainer.strategy": ["bogus", "fsdp"],
    "trainer.precision": ["bogus", "16"],
    "trainer.accumulate_grad_batches": ["0"],
    "trainer.log_every_n_steps": ["0"],
    "trainer.limit_train_batches": ["0", "-1", "1.5", "true", "bogus"],
    "trainer.max_time": ["bogus", "0s", "1h-5m"],
    "trainer.logger": ["bogus", "[csv,csv]", "[csv,none]"],
    "trainer.mlflow_tracking_uri": ["http://localhost:5000"],  # no mlflow logger: no effect
    "trainer.mlflow_experiment": ["elsewhere"],  # no mlflow logger: no effect
    "trainer.wandb_mode": ["bogus"],
    "trainer.wandb_project": ["elsewhere"],  # no wandb logger: no effect
    "trainer.checkpoint_every_n_epochs": ["0"],
    "eval.evaluators": ["[]", "[knn,knn]"],
    "eval.fractions": ["[]", "[0.0]", "[1.5]", "[nan]", "[0.5,0.5]"],
    "eval.seeds": ["0"],
    "eval.seeds_full": ["0"],
    "eval.baselines": ["[raw_pixels,raw_pixels]"],
    "eval.batch_size": ["0"],
    "eval.headline_evaluator": ["finetune"],  # not among eval.evaluators
    "eval.headline_fraction": ["0.0", "0.5"],  # 0.5: not among eval.fractions
    "eval.linear.Cs": ["[]", "[0.0]", "[nan]"],
    "eval.linear.cv_folds": ["1", "0"],
    "eval.linear.max_iter": ["0"],
    "eval.linear.default_C": ["0.0"],
    "eval.mlp.hidden_dim": ["0"],
    "eval.mlp.epochs": ["0"],
    "eval.mlp.lr": ["0.0"],
    "eval.mlp.patience": ["0"],
    "eval.mlp.holdout_fraction": ["1.0"],
    "eval.knn.k": ["0"],
    "eval.knn.temperature": ["0.0"],
    "eval.finetune.lr": ["0.0"],
    "eval.finetune.lr_decay_per_stage": ["0.0", "1.5"],
    "eval.finetune.batch_size": ["1"],
    "eval.finetune.fractions": ["[]", "[0.0]", "[0.5,0.5]"],
    "eval.finetune.from_head_layer": ["3"],  # a 3-layer (v2) head: 0..2
    "eval.finetune.fraction": ["0.0", "1.5"],
    "eval.raw_pixels_size": ["0"],
    "eval.random_init_seed": ["4294967296"],
    "online_probe.lr": ["0.0"],
    "monitor.max_samples": ["1"],
    "monitor.collapse_rank_fraction": ["1.5"],
    "monitor.collapse_std_fraction": ["1.5"],
    "distill.teacher": ["/runs/teacher/classifier.ckpt"],  # simclr-distill's, not pretrain's
    "distill.temperature": ["0.0"],
    "seed": ["4294967296"],
    "checkpoint": ["/runs/a/checkpoints/last.ckpt"],  # simclr-eval's, not pretrain's
}

# Overrides a case needs so that its field has an effect (else it would be refused for
# having none, which is a different rule): a key set to None is left out of BASE.
CONTEXT: dict[str, dict[str, str | None]] = {
    "data.split_seed": {"data": "digits", "data.root": None},
    "data.test_fraction": {"data": "digits", "data.root": None},
    "optim.betas": {"optim": "adamw"},
    "trainer.wandb_mode": {"trainer.logger": "[csv,wandb]"},
}

# Rules that relate two keys: (id, the key the line must name, overrides).
CROSS = [
    (
        "one-px-image-with-blur",
        "data.image_size",
        {"data.image_size": "1", "augment.blur_p": "0.5"},
    ),
    (
        "views-that-would-shrink",
        "data.start_size",
        {"data.image_size": "16", "data.start_size": "24"},
    ),
    (
        "chunks-with-accumulation",
        "loss.chunk_size",
        {"loss.chunk_size": "4", "trainer.accumulate_grad_batches": "2"},
    ),
    ("never-ending", "trainer.max_epochs", {"trainer.max_epochs": "-1", "trainer.max_steps": "-1"}),
    ("timm-name-on-a-resnet", "encoder.timm_name", {"encoder": "resnet18"}),
    ("momentum-with-adamw", "optim.momentum", {"optim": "adamw", "optim.momentum": "0.5"}),
    ("betas-with-lars", "optim.betas", {"optim.betas": "[0.8,0.9]"}),
    (
        "trust-with-sgd",
        "optim.trust_coefficient",
        {"optim": "sgd", "optim.trust_coefficient": "0.01"},
    ),
    (
        "mlflow-experiment-empty",
        "trainer.mlflow_experiment",
        {"trainer.logger": "mlflow", "trainer.mlflow_experiment": "''"},
    ),
    (
        "wandb-project-with-a-slash",
        "trainer.wandb_project",
        {"trainer.logger": "wandb", "trainer.wandb_project": "team/project"},
    ),
    ("wandb-mode-without-wandb", "trainer.wandb_mode", {"trainer.wandb_mode": "online"}),
    (
        "finetune-with-no-epochs",
        "eval.finetune.frozen_epochs",
        {"eval.finetune.frozen_epochs": "0", "eval.finetune.unfrozen_epochs": "0"},
    ),
    (
        "finetune-fractions-not-evaluated",
        "eval.finetune.fractions",
        {"eval.evaluators": "[finetune]", "eval.finetune.fractions": "[0.5]"},
    ),
    (
        "finetune-headline-not-fine-tuned",
        "eval.headline_fraction",
        {
            "eval.evaluators": "[finetune]",
            "eval.headline_evaluator": "finetune",
            "eval.headline_fraction": "1.0",
        },
    ),
    (
        "head-layer-of-a-v1-head",
        "eval.finetune.from_head_layer",
        {"head": "v1", "eval.finetune.from_head_layer": "2"},
    ),
    ("split-seed-without-digits", "data.split_seed", {"data.split_seed": "3"}),
]

# Through the real console script (a subprocess): one input of each kind of check.
SUBPROCESS = [
    ("loss.temperature", "inf"),
    ("augment.jitter_strength", "2.6"),
    ("trainer.devices", "0"),
]


def _unwrap(hint: Any) -> Any:
    """`X | None` -> X."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


def _is_dataclass_type(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def schema_fields(schema: type = RunConfig, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, type) of every field of `schema` and of every schema nested in it."""
    out: list[tuple[str, Any]] = []
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        key, hint = f"{prefix}{f.name}", hints[f.name]
        inner = _unwrap(hint)
        if _is_dataclass_type(inner):
            out.extend(schema_fields(inner, f"{key}."))
            if inner is not hint:  # an optional node: the node itself is a field too
                out.append((key, hint))
        else:
            out.append((key, hint))
    return out


def generic_values(hint: Any) -> list[str]:
    """Values invalid for every field of this type."""
    inner = _unwrap(hint)
    origin, args = typing.get_origin(inner), typing.get_args(inner)
    if inner is bool:
        return ["maybe"]
    if inner is float:
        return list(GENERIC_FLOAT)
    if inner is int:
        return ["-1"]
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        return ["bogus"]
    if origin is list and args and isinstance(args[0], type) and issubclass(args[0], enum.Enum):
        return ["[bogus]"]
    return []  # str, Any, list[float]: no value is invalid for all of them; see EXTRA


def invalid_values(key: str, hint: Any) -> list[str]:
    extra = EXTRA.get(key, [])
    own = [v for v in extra if v is not None]
    return own if extra[:1] == [None] else [*generic_values(hint), *own]


FIELDS = schema_fields()
WALKED = [(k, h) for k, h in FIELDS if k not in EXEMPT and not k.startswith("eval.data.")]
Case = tuple[str, str, dict[str, "str | None"]]  # (id, the key the line names, overrides)


def _field_cases() -> dict[str, list[Case]]:
    """Each field's inputs, by field."""
    cases: dict[str, list[Case]] = {}
    for key, hint in WALKED:
        cases[key] = [
            (f"{key}={value}", key, {**CONTEXT.get(key, {}), key: value})
            for value in invalid_values(key, hint)
        ]
    # eval.data.* run the same rules as data.* (validate_data): each field once there.
    for key, hint in FIELDS:
        if key.startswith("eval.data."):
            name = key.removeprefix("eval.data.")
            value = invalid_values(f"data.{name}", hint)[0]
            digits = CONTEXT.get(f"data.{name}", {}).get("data") == "digits"
            overrides: dict[str, str | None] = {"+eval/data": "digits" if digits else "folder"}
            if not digits and name != "root":
                overrides["eval.data.root"] = "{data}"
            cases[key] = [(f"{key}={value}", key, {**overrides, key: value})]
    return cases


BY_FIELD = _field_cases()
ALL_CASES = [c for cases in BY_FIELD.values() for c in cases] + list(CROSS)
# One input per field; eval.data.* share data.*'s code path, so one of them stands for all.
CONSOLE_CASES = [c[0] for k, c in BY_FIELD.items() if not k.startswith("eval.data.")] + [
    next(c[0] for k, c in BY_FIELD.items() if k.startswith("eval.data."))
]


def _params(cases: list[Case]) -> list[Any]:
    return [pytest.param(key, changes, id=name) for name, key, changes in cases]


def test_every_field_has_invalid_values_or_a_reason():
    missing = [k for k, h in WALKED if not invalid_values(k, h)]
    assert not missing, f"fields with neither an invalid value nor a reason in EXEMPT: {missing}"
    stale = [k for k in [*EXTRA, *EXEMPT, *CONTEXT] if k not in dict(FIELDS)]
    assert not stale, f"keys of this table that the schemas no longer have: {stale}"
    assert len({name for name, _, _ in ALL_CASES}) == len(ALL_CASES)  # ids name one input


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_labeled_folder(tmp_path_factory.mktemp("images"))


@pytest.fixture
def reached(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Run directories of the jobs that got past every check (the job is a recorder)."""
    seen: list[Path] = []
    monkeypatch.setattr(pretrain, "_pretrain", lambda cfg, run: seen.append(run.path))
    return seen


def _argv(data_root: Path, run_dir: Path, changes: dict[str, str | None]) -> list[str]:
    """BASE with `changes` applied key by key (None: the key left out)."""
    args: dict[str, str | None] = {}
    for item in [*BASE, f"data.root={data_root}", f"hydra.run.dir={run_dir}"]:
        key, value = item.split("=", 1)
        args[key] = value
    for key, value in changes.items():
        args[key] = value if value is None else value.replace("{data}", str(data_root))
    return [f"{k}={v}" for k, v in args.items() if v is not None]


def _tree(root: Path) -> dict[str, str]:
    """Every path under `root` (directories too) with the sha256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "/"
        for p in sorted(root.rglob("*"))
    }


def _assert_refused(code: int, stderr: str, key: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]
    assert len(lines) == 1, stderr[-2000:]
    assert lines[0].startswith(f"{PROGRAM}: error: "), lines[0]
    assert key in lines[0], (key, lines[0])


@functools.cache
def _composed(overrides: tuple[str, ...]) -> DictConfig:
    cfg = compose_checked(CONF_DIR, CONFIG_NAME, list(overrides))
    with open_dict(cfg):
        del cfg["hydra"]  # the job check does not read it; copies are faster without
    return cfg


def _preflight_error(argv: list[str], key: str) -> str | None:
    """What simclr-pretrain's preflight says of `argv`, `key=...` applied last; None: fine."""
    named = [a for a in argv if a.split("=", 1)[0] == key]
    rest = tuple(a for a in argv if a not in named and not a.startswith("hydra."))
    try:
        cfg = copy.deepcopy(_composed(rest))
        try:
            parsed = OverridesParser.create().parse_overrides(named)
            ConfigLoaderImpl._apply_overrides_to_config(parsed, cfg)
        except (HydraException, OmegaConfBaseException) as err:  # as compose_checked does
            return explain_composition_error(err, [*rest, *named])
        pretrain._check(cfg, None)  # what preflight runs on every job's config
    except SimclrError as err:
        return str(err)
    return None


def test_the_base_command_line_is_valid(tmp_path, data_root, capfd, reached, monkeypatch):
    # The control: without a bad value the job starts, so each refusal below is the value's.
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    result = run_cli(pretrain.cli, PROGRAM, _argv(data_root, run, {}), capfd)
    assert result.code == 0, result.stderr[-2000:]
    assert reached == [run]
    assert _preflight_error(_argv(data_root, run, {}), "optim.lr") is None


@pytest.mark.parametrize("key,changes", _params(ALL_CASES))
def test_every_input_is_refused_in_one_line_naming_the_key(data_root, tmp_path, key, changes):
    message = _preflight_error(_argv(data_root, tmp_path / "run", changes), key)
    assert message is not None, f"accepted: {changes}"
    assert key in message and "\n" not in message, message


@pytest.mark.parametrize("key,changes", _params(CONSOLE_CASES))
def test_the_console_refuses_it_and_writes_nothing(
    tmp_path, data_root, capfd, reached, monkeypatch, key, changes
):
    monkeypatch.chdir(tmp_path)  # Hydra's default outputs/ would land here
    (tmp_path / "notes.txt").write_text("the user's own file\n")
    run = tmp_path / "run"
    before = _tree(tmp_path)
    result = run_cli(pretrain.cli, PROGRAM, _argv(data_root, run, changes), capfd)
    _assert_refused(result.code, result.stderr, key)
    assert not reached
    assert not run.exists()
    assert _tree(tmp_path) == before


@pytest.mark.parametrize(
    "key,value",
    [
        pytest.param(key, value, id=f"{key}={value}", marks=[pytest.mark.slow] if i else [])
        for i, (key, value) in enumerate(SUBPROCESS)
    ],
)
def test_the_console_script_refuses_it_too(tmp_path, data_root, key, value):
    # A real process (~7 s of imports each: one in the default suite, the others slow).
    (tmp_path / "notes.txt").write_text("the user's own file\n")
    before = _tree(tmp_path)
    argv = _argv(data_root, tmp_path / "run", {key: value})
    result = subprocess.run(
        [str(SCRIPT), *argv], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    _assert_refused(result.returncode, result.stderr, key)
    assert _tree(tmp_path) == before


def count() -> dict[str, int]:
    """What this file tries, for docs/errors.md and the closing note."""
    return {
        "fields": len(BY_FIELD),
        "exempt": len(EXEMPT),
        "inputs": len(ALL_CASES),
        "through the console in-process": len(CONSOLE_CASES),
        "through the console script": len(SUBPROCESS),
    }


def test_docs_errors_md_states_these_counts():
    # The closing note of docs/errors.md quotes what this file tries; keep them equal.
    text = (REPO / "docs" / "errors.md").read_text()
    doc = " ".join(text.split())  # line breaks fall anywhere
    n = count()
    assert f"finds {len(FIELDS)} fields" in doc
    assert f"{n['fields']} are walked" in doc and f"{n['exempt']} are exempt" in doc
    assert f"It tries **{n['inputs']} invalid inputs**" in doc
    assert f"{n['through the console in-process']} in all" in doc
    assert f"{n['through the console script']} go through" in doc


def test_each_range_is_defined_once_for_a_field_that_exists():
    from simclr.config.validate import RANGES

    keys = [key for key, _ in RANGES]
    assert len(set(keys)) == len(keys), "a key with two rows: which one holds?"
    assert not set(keys) - dict(FIELDS).keys(), "rows for keys the schemas do not have"
