"""ONNX and TorchScript exports: same features as PyTorch, metadata, refusal, atomic writes.

The encoder is the digits preset's (CIFAR-stem ResNet-18 at 16 px) with random
weights and BatchNorm statistics, inside a run directory whose report.json gives
the headline metric. Each format is exported once per module; the tests that need
the exports are marked slow (the ONNX export alone takes 10-20 s on two cores).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from simclr.config import register_configs
from simclr.console.export import cli
from simclr.errors import OutputError
from simclr.hub import export_encoder
from simclr.hub.export import OPSET, TORCHSCRIPT_METADATA
from tests.conftest import CONF_DIR
from tests.support.hub_helpers import make_model, save_checkpoint

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOLERANCE = 1e-4  # float32, max abs difference of the features
HEADLINE = {"representation": "simclr", "evaluator": "linear", "fraction": 0.1, "mean": 0.9}


def digits_config() -> dict[str, Any]:
    register_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=["experiment=digits"])
    out = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert isinstance(out, dict)
    return out  # type: ignore[return-value]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """A run directory with last.ckpt and report.json, and its encoder."""
    run_dir = tmp_path_factory.mktemp("run")
    cfg = digits_config()
    encoder, head = make_model(cfg, seed=3)
    save_checkpoint(run_dir / "checkpoints" / "last.ckpt", encoder, head, cfg)
    (run_dir / "report.json").write_text(json.dumps({"headline": HEADLINE}))
    return run_dir, encoder


@pytest.fixture(scope="module")
def exported(run: tuple[Path, torch.nn.Module]) -> dict[str, Path]:
    run_dir, _ = run
    return {s: export_encoder(run_dir, run_dir / f"enc{s}") for s in (".onnx", ".pt")}


def images(n: int) -> torch.Tensor:
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(n))


def reference(encoder: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return encoder.eval()(x).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 7])
def test_onnxruntime_gives_the_pytorch_features(run, exported, batch):
    session = ort.InferenceSession(str(exported[".onnx"]), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("images", "features")
    assert inp.shape[0] == out.shape[0] == "batch"  # the dynamic axis
    x = images(batch)
    got = session.run(None, {"images": x.numpy()})[0]
    assert got.shape == (batch, 512)
    assert np.abs(got - reference(run[1], x)).max() < TOLERANCE


def _check_metadata(meta: dict[str, Any], run_dir: Path) -> None:
    pre = meta["preprocessing"]
    assert pre["image_size"] == 16 and pre["center_crop"] == [16, 16]
    assert pre["resize_shorter_side"] == 16  # eval_resize_fraction 1: no margin
    assert pre["mean"] == [0.5, 0.5, 0.5] and pre["std"] == [0.5, 0.5, 0.5]
    assert pre["scale"] == pytest.approx(1 / 255)
    prov = meta["provenance"]
    assert (prov["arch"], prov["stem"], prov["origin"]) == ("resnet18", "cifar", "simclr")
    assert prov["source"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert prov["dataset"] == "digits" and prov["preset"] == "digits"
    assert prov["epoch"] == 0 and prov["global_step"] == 0
    assert meta["metrics"] == {"headline": HEADLINE}
    assert meta["config"]["encoder"]["arch"] == "resnet18"
    assert meta["input"]["shape"] == ["batch", 3, 16, 16]
    assert meta["output"]["shape"] == ["batch", 512]


@pytest.mark.slow
def test_onnx_metadata_carries_preprocessing_provenance_and_opset(run, exported):
    model = onnx.load(str(exported[".onnx"]))
    props = {p.key: p.value for p in model.metadata_props}
    assert props["opset"] == str(OPSET)
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {OPSET}
    assert props["kind"] == "onnx"
    _check_metadata({k: json.loads(v) for k, v in props.items() if v[:1] in "[{"}, run[0])


# Runs with -I (no PYTHONPATH, no user site, no script dir) in an empty directory, and
# refuses `import simclr` outright: the venv's editable install would otherwise find it.
FRESH = """
import importlib.abc, json, sys
class NoSimclr(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "simclr" or name.startswith("simclr."):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, NoSimclr())
try:
    import simclr
    raise SystemExit("simclr was importable")
except ModuleNotFoundError:
    pass
import warnings
warnings.simplefilter("ignore", FutureWarning)
import torch
extra = {"simclr_metadata.json": ""}
model = torch.jit.load(sys.argv[1], _extra_files=extra)
inputs = torch.load(sys.argv[2], weights_only=True)
with torch.no_grad():
    torch.save({k: model(x) for k, x in inputs.items()}, sys.argv[3])
meta = json.loads(extra["simclr_metadata.json"])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("simclr", "torchvision", "timm"))
print(json.dumps({"meta": meta, "loaded": loaded}))
"""


@pytest.mark.slow
def test_torchscript_in_a_fresh_process_without_simclr(run, exported, tmp_path):
    assert TORCHSCRIPT_METADATA in FRESH
    inputs = {"1": images(1), "7": images(7)}
    torch.save(inputs, tmp_path / "in.pt")
    script = tmp_path / "fresh.py"
    script.write_text(textwrap.dedent(FRESH))
    done = subprocess.run(
        [sys.executable, "-I", str(script), str(exported[".pt"]), "in.pt", "out.pt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []  # neither simclr nor torchvision nor timm was imported
    outputs = torch.load(tmp_path / "out.pt", weights_only=True)
    for key, x in inputs.items():
        assert np.abs(outputs[key].numpy() - reference(run[1], x)).max() < TOLERANCE
    assert report["meta"]["kind"] == "torchscript"
    _check_metadata(report["meta"], run[0])


@pytest.mark.parametrize("suffix", [".onnx", ".pt", ".safetensors"])
def test_an_existing_dest_is_refused(run, tmp_path, capfd, suffix):
    dest = tmp_path / f"enc{suffix}"
    dest.write_bytes(b"earlier work")
    with pytest.raises(OutputError, match="already exists; pass --force"):
        export_encoder(run[0], dest)
    assert cli([str(run[0]), str(dest)]) == 2
    assert "already exists" in capfd.readouterr().err
    assert dest.read_bytes() == b"earlier work"
    assert list(tmp_path.iterdir()) == [dest]


def test_force_replaces_and_overwrite_is_its_old_name(run, tmp_path):
    # --force replaces an earlier export only (anything else: test_own_files_only.py).
    for flag, suffix in (("--force", ".pt"), ("--overwrite", ".safetensors")):
        dest = tmp_path / f"enc{suffix}"
        assert cli([str(run[0]), str(dest)]) == 0
        earlier = dest.stat().st_mtime_ns
        assert cli([str(run[0]), str(dest), flag]) == 0
        assert dest.stat().st_mtime_ns != earlier
    assert (tmp_path / "enc.pt").read_bytes()[:2] == b"PK"  # a TorchScript archive


@pytest.mark.parametrize("suffix", [".onnx", ".pt", ".safetensors"])
def test_a_failed_export_leaves_no_file(run, tmp_path, monkeypatch, suffix):
    import simclr.hub.export as deploy
    import simclr.hub.export as export

    def half_then_fail(*args: Any, **kwargs: Any) -> None:
        (tmp,) = [a for a in args if isinstance(a, (str, Path)) and str(a).endswith(".partial")]
        Path(tmp).write_bytes(b"half a file")
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(deploy, "write_onnx", half_then_fail)
    monkeypatch.setattr(deploy, "write_torchscript", half_then_fail)
    monkeypatch.setattr(export, "save_file", half_then_fail)
    dest = tmp_path / f"enc{suffix}"
    with pytest.raises((OutputError, RuntimeError), match="exporter crashed"):
        export_encoder(run[0], dest)
    assert list(tmp_path.iterdir()) == []  # neither DEST nor the .partial beside it


def test_bad_dest_names_and_options_are_one_line(run, tmp_path, monkeypatch):
    with pytest.raises(OutputError, match=r"expected a name ending in \.safetensors, \.onnx, \.pt"):
        export_encoder(run[0], tmp_path / "enc.tflite")
    with pytest.raises(OutputError, match=r"--with-head is for \.safetensors"):
        export_encoder(run[0], tmp_path / "enc.onnx", with_head=True)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "onnxscript" else real(n, *a)
    )
    with pytest.raises(OutputError) as err:
        export_encoder(run[0], tmp_path / "enc.onnx")
    assert "onnxscript" in str(err.value) and "simclr[export]" in str(err.value)
    assert list(tmp_path.iterdir()) == []
