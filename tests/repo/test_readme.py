"""Every example of README.md and of the docs it points to runs as written: their
```bash commands and ```python blocks.

The blocks are read from the Markdown files themselves (DOCUMENTS: README.md first,
then the docs/ pages that hold its former examples; any number of blocks, in any
section), so the test follows the text as it is edited. All files share one
workspace, in order, so a docs/ example can use the run a README example made.
Each shell command of the toolkit
(`simclr-*`, found in pyproject's [project.scripts], and `python -m simclr.X`) runs
in this process, in a temporary directory, with tiny overrides appended so that it
takes seconds on a CPU (one epoch of two batches, one seed, ...). Placeholders are
replaced by what the test just made: `outputs/<date>/<time>` (or a dated example like
`outputs/2026-11-23/10-00-00`) and `PATH` by the newest run with a checkpoint,
`multirun/<date>/<time>` by the newest sweep, a `data.root` that does not exist
(`~/photos`, `DIR`) and a missing folder named in Python (`"photos/"`) by a
generated labeled image folder, `pil_image` by an image, and a foreign weights
file named in `load_encoder("x.pth", arch=...)` by a random one of that layout.
A command is skipped only for a reason in SKIPS (data this machine lacks, a GPU,
the development Makefile), each named in the skip message.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import runpy
import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import tomllib
import torch
from PIL import Image

# The checkout: the nearest folder above this file that holds pyproject.toml.
from tests.conftest import REPO, write_image

# The Markdown files whose examples run, in this order (README.md first: it makes the
# runs and sweeps the docs' placeholders stand for). A docs/ page with commands that
# cannot run here (torchrun, SLURM, the benchmarks) is not listed.
DOCUMENTS = (
    "README.md",
    "docs/data.md",
    "docs/evaluation.md",
    "docs/tracking-and-deployment.md",
)
# Another file can stand in for all of them (e.g. a draft):
# SIMCLR_TEST_README=path/to/draft.md runs that file's examples only.
DRAFT = os.environ.get("SIMCLR_TEST_README")

# Appended to every simclr-pretrain command (later values win in Hydra).
TINY_PRETRAIN = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.enable_progress_bar=false",
    "data.batch_size=16",
    "data.image_size=8",
    "data.num_workers=0",
]
# Appended to every command that evaluates (simclr-pretrain unless eval=none, simclr-eval).
TINY_FINETUNE = ["eval.finetune.frozen_epochs=1", "eval.finetune.unfrozen_epochs=1"]
TINY_EVAL = ["eval.seeds=1", "eval.seeds_full=1", "eval.mlp.epochs=5", *TINY_FINETUNE]
# The student trains as pretraining does; its data are the teacher's (the tiny run's).
TINY_DISTILL = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.enable_progress_bar=false",
]
TINY = {
    "simclr-pretrain": TINY_PRETRAIN + TINY_EVAL,
    "simclr-eval": TINY_EVAL,
    "simclr-finetune": TINY_FINETUNE,
    "simclr-distill": TINY_DISTILL + TINY_EVAL,
}
# Data sets that must already be under data.root (nothing is ever downloaded).
NEEDS_FILES = {"cifar10", "cifar100", "stl10"}
SKIPS = {
    "make run": "creates .venv and installs the package; the simclr-pretrain examples run here",
    "make test": "runs the whole test suite, this test included",
    "make test-all": "runs the whole test suite with the slow tests, this test included",
    "make lint": "the linters run in CI (make lint), not as an example",
    "make bench": "the benchmarks take about 15 minutes",
    "make recipe": "about an hour on 2 CPU cores; the commands it runs are examples here",
    "make install": "creates .venv and installs the package",
    "data": "needs the {name} files under data.root (this machine has none; nothing is downloaded)",
    "gpu": "needs a CUDA device",
}
# `pip install 'simclr[X]'`: not run (the test extra already holds what the examples
# need), but each extra it names must exist in pyproject.toml.
PIP_INSTALL_EXTRA = re.compile(r"^simclr\[([\w,\s-]+)\]$")
PLACEHOLDER_RUN = re.compile(r"outputs/(<date>|\d{4}-\d\d-\d\d)/(<time>|\d\d-\d\d-\d\d)")
PLACEHOLDER_SWEEP = re.compile(r"multirun/(<date>|\d{4}-\d\d-\d\d)/(<time>|\d\d-\d\d-\d\d)")
ROOT_KEYS = ("data.root", "eval.data.root")


@dataclass(frozen=True)
class Example:
    """One shell command or one Python block of a Markdown file."""

    kind: str  # "bash" | "python"
    line: int  # where it starts in its file
    text: str
    source: str = "README.md"  # the file, relative to the repository

    @property
    def where(self) -> str:
        return f"{self.source} line {self.line}"

    @property
    def id(self) -> str:
        first = self.text.strip().splitlines()[0] if self.text.strip() else ""
        prefix = "" if self.source == "README.md" else f"{self.source}:"
        return f"{prefix}L{self.line}-{self.kind}: {first[:60]}"


def readme_examples(text: str, source: str = "README.md") -> list[Example]:
    """The ```bash commands (one per logical line, comments dropped) and ```python
    blocks of a Markdown text, in order; `source` names the file in messages."""
    out: list[Example] = []
    for match in re.finditer(r"^```(\w+)[^\n]*\n(.*?)^```", text, re.M | re.S):
        kind, body = match.group(1).lower(), match.group(2)
        start = text.count("\n", 0, match.start(2)) + 1
        if kind in ("python", "py"):
            out.append(Example("python", start, body, source))
        elif kind in ("bash", "sh", "shell", "console"):
            pending, first = "", start
            for offset, raw in enumerate(body.splitlines()):
                line = raw.removeprefix("$ ") if kind == "console" else raw
                if not pending:
                    first = start + offset
                if line.rstrip().endswith("\\"):
                    pending += line.rstrip()[:-1] + " "
                    continue
                command = shlex.join(shlex.split(pending + line, comments=True))
                pending = ""
                if command:
                    out.append(Example("bash", first, command, source))
    return out


def document_examples() -> list[Example]:
    """The examples of every file of DOCUMENTS (or of the draft standing in), in order."""
    files = [(Path(DRAFT).name, Path(DRAFT))] if DRAFT else [(n, REPO / n) for n in DOCUMENTS]
    out: list[Example] = []
    for name, path in files:
        out += readme_examples(path.read_text(encoding="utf-8"), name)
    return out


EXAMPLES = document_examples()


@cache
def project_table() -> dict[str, Any]:
    """pyproject.toml's [project] table, read once."""
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def console_scripts() -> dict[str, Callable[[], object]]:
    """Program name -> entry function, as pyproject.toml installs them."""
    scripts = project_table()["scripts"]
    out = {}
    for name, target in scripts.items():
        module, _, func = target.partition(":")
        out[name] = lambda m=module, f=func: getattr(importlib.import_module(m), f)()
    return out


def check_extras_exist(example: Example, requirements: list[str]) -> None:
    """Fail when an example asks pip for a simclr extra that pyproject.toml lacks."""
    defined = set(project_table().get("optional-dependencies", {}))
    for requirement in requirements:
        match = PIP_INSTALL_EXTRA.match(requirement)
        if not match:
            pytest.fail(f"{example.where}: pip install {requirement} is not a simclr extra")
        missing = {e.strip() for e in match.group(1).split(",")} - defined
        if missing:
            pytest.fail(f"{example.where}: extras {sorted(missing)} not in pyproject.toml")


class Workspace:
    """The temporary directory the examples run in, and what they made there."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.images = root / "_images"  # the labeled folder standing in for the user's
        rng = np.random.default_rng(0)
        for split, count in (("train", 12), ("test", 4)):
            for c in ("cat", "dog", "fox"):
                for i in range(count):
                    write_image(self.images / split / c / f"{i}.png", rng, size=20)

    def newest(self, top: str, has: Callable[[Path], bool]) -> Path | None:
        found = [p for p in (self.root / top).glob("*/*") if p.is_dir() and has(p)]
        return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None

    def run(self) -> Path | None:
        """The newest pretraining run (a directory with a checkpoint)."""
        return self.newest("outputs", lambda p: any((p / "checkpoints").glob("*.ckpt")))

    def sweep(self) -> Path | None:
        return self.newest("multirun", lambda p: any(p.glob("*/.hydra")))

    def substitute(self, text: str) -> str:
        """README placeholders -> what this workspace holds (skip if it holds nothing)."""
        for pattern, found, what in (
            (PLACEHOLDER_RUN, self.run(), "a pretraining run"),
            (PLACEHOLDER_SWEEP, self.sweep(), "a sweep"),
        ):
            if pattern.search(text):
                if found is None:
                    pytest.skip(f"needs {what} made by an earlier example; none ran")
                text = pattern.sub(str(found.relative_to(self.root)), text)
        return text

    def folder(self, name: str) -> Path:
        """A missing folder an example names: a copy of the labeled image folder."""
        path = (self.root / name).expanduser() if not name.startswith("~") else self.images
        if not path.exists():
            shutil.copytree(self.images, path)
        return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("readme"))


@pytest.fixture
def in_workspace(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.chdir(workspace.root)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield workspace
    torch.set_num_threads(threads)


def _first_values(args: list[str]) -> list[str]:
    """A sweep's first job: `k=a,b` -> `k=a` (brackets keep their commas)."""
    out = []
    for arg in args:
        key, eq, value = arg.partition("=")
        if eq and "," in value and not value.startswith(("[", "{", "'", '"')):
            value = value.split(",")[0]
        out.append(key + eq + value)
    return out


def skip_reason(program: str, args: list[str]) -> str | None:
    """Why a toolkit command cannot run here, from the config it composes."""
    if program not in TINY:
        return None
    from simclr.api import compose

    overrides = [a for a in _first_values(args) if "=" in a and not a.startswith("-")]
    overrides = [a for a in overrides if a.split("=")[0] not in (*ROOT_KEYS, "checkpoint")]
    cfg, _ = compose(overrides)
    data = [cfg.data.name] + ([cfg.eval.data.name] if cfg.eval.get("data") else [])
    lacking = sorted(set(data) & NEEDS_FILES)
    if lacking:
        return SKIPS["data"].format(name=", ".join(lacking))
    if str(cfg.trainer.accelerator) in ("gpu", "cuda") and not torch.cuda.is_available():
        return SKIPS["gpu"]
    return None


def prepare(workspace: Workspace, program: str, args: list[str]) -> list[str]:
    """The command's arguments with placeholders filled and the tiny overrides appended."""
    out = []
    for arg in args:
        key, eq, value = arg.partition("=")
        if eq and key.lstrip("+") in ROOT_KEYS and not Path(value).expanduser().exists():
            arg = f"{key}={workspace.folder(value)}"
        elif eq and key == "checkpoint" and value == "PATH":
            run = workspace.run()
            if run is None:
                pytest.skip("needs a pretraining run made by an earlier example; none ran")
            arg = f"checkpoint={run.relative_to(workspace.root)}"
        out.append(arg)
    if "--cfg" in out or "--help" in out or "-h" in out:
        return out
    return [*out, *TINY.get(program, [])]


def run_program(main: Callable[[], object], program: str, argv: list[str]) -> int:
    with mock.patch.object(sys, "argv", [program, *argv]):
        try:
            code = main()
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
    return code if isinstance(code, int) else 0


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_readme_example_runs(example: Example, in_workspace: Workspace, capfd) -> None:
    if example.kind == "python":
        run_python(example, in_workspace)
        return
    text = in_workspace.substitute(example.text)
    words = shlex.split(text)
    program, args = words[0], words[1:]
    if program == "pip" and args[:1] == ["install"]:
        check_extras_exist(example, args[1:])
        pytest.skip(f"{text}: installs packages; the test extra already has them")
    for prefix, reason in SKIPS.items():
        if text == prefix or text.startswith(prefix + " "):
            pytest.skip(f"{text}: {reason}")
    scripts = console_scripts()
    if program == "python" and args[:1] == ["-m"] and args[1:2]:
        # `python -m simclr.X ARGS`: the module as __main__, in this process.
        module, args = args[1], args[2:]
        if not module.startswith("simclr."):
            pytest.fail(f"{example.where}: python -m {module} is not the toolkit's")
        scripts[program] = partial(runpy.run_module, module, run_name="__main__")
    if program not in scripts:
        pytest.fail(
            f"{example.where}: {program} is not a console script of the toolkit; "
            "add it to pyproject.toml or a reason to SKIPS"
        )
    reason = skip_reason(program, args)
    if reason:
        pytest.skip(f"{text}: {reason}")
    argv = prepare(in_workspace, program, args)
    capfd.readouterr()
    code = run_program(scripts[program], program, argv)
    _, err = capfd.readouterr()
    assert code == 0, (
        f"{example.where}: `{program} {shlex.join(argv)}` exited {code}\n{err[-3000:]}"
    )


def write_foreign_weights(call: ast.Call) -> None:
    """`load_encoder("x.pth", arch=...)` of a file we lack: write one of that layout.

    Random weights in the layout the file name says: lightly's backbone
    (`nn.Sequential` of a torchvision ResNet's children but the fc), a timm
    checkpoint (`{"state_dict": ...}`, as timm's train.py saves it) for a `timm:`
    arch, else a torchvision state dict.
    """
    arch = next((k.value for k in call.keywords if k.arg == "arch"), None)
    if not (
        call.args and isinstance(call.args[0], ast.Constant) and isinstance(arch, ast.Constant)
    ):
        return
    path, name = Path(str(call.args[0].value)), str(arch.value)
    if path.exists() or path.is_absolute():
        return
    if name.startswith("timm:"):
        import timm

        model = timm.create_model(name.removeprefix("timm:"), pretrained=False)
        torch.save({"state_dict": model.state_dict(), "arch": name}, path)
        return
    import torchvision

    resnet = getattr(torchvision.models, name)(weights=None)
    if "lightly" in path.name:
        resnet = torch.nn.Sequential(*list(resnet.children())[:-1])
    torch.save(resnet.state_dict(), path)


def run_python(example: Example, workspace: Workspace) -> None:
    """exec the block in the workspace: its placeholders filled, a tiny `pretrain`."""
    source = workspace.substitute(example.text)
    for node in ast.walk(ast.parse(source)):  # folders the block names but we lack
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            name = node.value
            if name.endswith("/") and not name.startswith(("/", "outputs/", "multirun/")):
                workspace.folder(name)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "load_encoder":
            write_foreign_weights(node)
    import simclr.api

    real = simclr.api.pretrain

    def tiny_pretrain(overrides=(), run_dir=None):
        return real([*overrides, *TINY["simclr-pretrain"]], run_dir)

    namespace = {"__name__": "readme", "pil_image": Image.new("RGB", (40, 30), "gray")}
    with mock.patch.object(simclr.api, "pretrain", tiny_pretrain):
        exec(compile(source, f"{example.source}:{example.line}", "exec"), namespace)


def test_a_pip_install_example_naming_an_unknown_extra_fails() -> None:
    example = Example(kind="bash", text="pip install 'simclr[exprot]'", line=1)
    check_extras_exist(example, ["simclr[export,mlflow]"])  # both defined: passes
    with pytest.raises(pytest.fail.Exception, match="exprot"):
        check_extras_exist(example, ["simclr[exprot]"])


def test_every_document_exists_and_holds_examples() -> None:
    for name in DOCUMENTS:
        path = REPO / name
        assert path.is_file(), f"{name} is in DOCUMENTS but does not exist"
        assert readme_examples(path.read_text(encoding="utf-8"), name), f"{name}: no examples"


def test_the_readme_is_a_front_door() -> None:
    """At most 10,000 characters, and its quick start is the two commands CI runs."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text) <= 10_000, f"README.md has {len(text)} characters; move detail to docs/"
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [e.text for e in readme_examples(quick)]
    assert commands == ["make run", "make test"]


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize(
    "name",
    [
        "README.md",
        "benchmarks/README.md",
        *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")),
    ],
)
def test_relative_links_point_at_files_that_exist(name: str) -> None:
    path = REPO / name
    broken = []
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        file = target.split("#", 1)[0]
        if not (path.parent / file).exists():
            broken.append(target)
    assert not broken, f"{name}: links to missing files: {broken}"
