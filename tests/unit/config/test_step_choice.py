"""The step's `auto` choices (compile, views, decode) with faked device facts, the one-line
refusals of impossible values, and the choice reaching the module and the data."""

from __future__ import annotations

import re

import pytest
from omegaconf import OmegaConf

from simclr.config import validate_config
from simclr.config.hardware import DeviceFacts
from simclr.config.schema import RunConfig
from simclr.config.step import CPU_COMPILE_REASON, choose_step, choose_step_for
from simclr.errors import ConfigError

CPU = DeviceFacts("cpu", "AMD EPYC", True, "AVX512_BF16")
CUDA = DeviceFacts("cuda", "NVIDIA H100", True, "torch.cuda.is_bf16_supported()")
MPS = DeviceFacts("mps", "mps", False, "not measured on mps")


def run_cfg(data: str = "folder", **values: object):
    cfg = OmegaConf.structured(RunConfig)
    cfg.data.name = data
    for key, value in values.items():
        OmegaConf.update(cfg, key.replace("__", "."), value)
    return cfg


@pytest.mark.parametrize(
    "facts,data,compiled,views,decode",
    [
        (CUDA, "folder", True, "gpu", "gpu"),  # the GPU path: everything on the device
        (CUDA, "stream", True, "gpu", "gpu"),
        (CUDA, "cifar10", True, "gpu", "cpu"),  # arrays: nothing to decode
        (CPU, "folder", False, "cpu", "cpu"),
        (MPS, "folder", False, "cpu", "cpu"),
    ],
)
def test_auto_rules(facts, data, compiled, views, decode):
    choice = choose_step(run_cfg(data), facts)
    assert (choice.compile, choice.views, choice.decode) == (compiled, views, decode)
    for reason in (choice.compile_reason, choice.views_reason, choice.decode_reason):
        assert reason.startswith("auto:")


def test_the_cpu_reason_names_the_cost_that_makes_compiling_lose_there():
    choice = choose_step(run_cfg(), CPU)
    assert choice.compile_reason == CPU_COMPILE_REASON and "72 s" in CPU_COMPILE_REASON
    assert choice.describe().startswith("not compiled (auto: off on the CPU")


@pytest.mark.parametrize("facts", [CPU, CUDA, MPS])
def test_explicit_values_win(facts):
    for compile_ in (True, False):
        for backend in ("cpu", "gpu"):
            cfg = run_cfg(encoder__compile=compile_, augment__backend=backend)
            cfg.augment.decode = "cpu"
            choice = choose_step(cfg, facts)
            assert (choice.compile, choice.views, choice.decode) == (compile_, backend, "cpu")
            assert choice.compile_reason == "set in encoder.compile"
            assert choice.views_reason == "set in augment.backend"
            assert choice.decode_reason == "set in augment.decode"


def test_chunks_are_not_compiled_as_one_graph():
    cfg = run_cfg(loss__chunk_size=16)
    assert not choose_step(cfg, CUDA).compile
    assert "loss.chunk_size" in choose_step(cfg, CUDA).compile_reason
    cfg.encoder.compile = True
    assert choose_step(cfg, CUDA).compile  # the encoder alone, in place


def test_gpu_views_on_the_cpu_keep_decoding_in_the_workers():
    choice = choose_step(run_cfg(augment__backend="gpu"), CPU)
    assert (choice.views, choice.decode) == ("gpu", "cpu")
    assert "no CUDA device" in choice.decode_reason


def test_cpu_views_on_cuda_keep_decoding_in_the_workers():
    choice = choose_step(run_cfg(augment__backend="cpu"), CUDA)
    assert (choice.views, choice.decode) == ("cpu", "cpu")
    assert "augment.backend=cpu" in choice.decode_reason


@pytest.mark.parametrize(
    "values,facts,named",
    [
        ({"augment__decode": "gpu"}, CPU, "augment.decode=gpu needs a CUDA device, not cpu"),
        (
            {"augment__decode": "gpu", "augment__backend": "cpu"},
            CUDA,
            "augment.decode=gpu needs augment.backend=gpu",
        ),
    ],
)
def test_impossible_gpu_decode_is_one_line(values, facts, named):
    with pytest.raises(ConfigError, match=re.escape(named)) as err:
        choose_step(run_cfg(**values), facts)
    assert "\n" not in str(err.value)


def test_a_checkpoints_config_read_elsewhere_is_not_refused():
    # Loading (not training) a run that decoded on its GPU, on a CPU machine.
    cfg = run_cfg(augment__backend="gpu", augment__decode="gpu")
    choice = choose_step(cfg, CPU, strict=False)
    assert choice.decode == "cpu" and "not possible here" in choice.decode_reason


def test_a_config_without_these_keys_gets_what_it_had():
    # The config a checkpoint written before these keys existed holds.
    cfg = OmegaConf.create(
        {"data": {"name": "folder"}, "augment": {}, "encoder": {}, "loss": {}, "trainer": {}}
    )
    choice = choose_step(cfg, CUDA)
    assert (choice.compile, choice.views, choice.decode) == (False, "cpu", "cpu")


@pytest.mark.parametrize("value", ["maybe", 1])
def test_a_bad_compile_value_is_one_line_naming_the_key(value):
    # (A bad augment.backend is refused while composing, with the choices listed:
    # tests/unit/config/test_every_field_validated.py walks every enum field.)
    cfg = OmegaConf.structured(RunConfig)
    cfg.encoder.compile = value
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert str(err.value) == f"encoder.compile={value!r} is not one of auto, true, false"


def test_the_module_and_the_data_follow_the_choice_on_this_machine(compose_config, labeled_folder):
    from simclr.data.datamodule import SimCLRDataModule
    from simclr.training.module import SimCLRModule

    cfg = compose_config(
        "experiment=none",
        "data=folder",
        f"data.root={labeled_folder}",
        "data.image_size=16",
        "data.batch_size=8",
        "data.num_workers=0",
        "encoder=timm",
        "encoder.timm_name=test_resnet",
        "trainer.accelerator=cpu",
    )
    module = SimCLRModule(cfg)
    assert module.step_choice == choose_step_for(cfg, "cpu")
    assert (module.step_choice.views, module.gpu_augment) == ("cpu", None)
    views, _ = next(iter(SimCLRDataModule(cfg.data, cfg.augment).train_dataloader()))
    assert views[0].dtype.is_floating_point  # finished in the workers
