"""Precision and memory format for the hardware: the rules with faked device facts,
the real signal torch gives, and the choice reaching the Trainer and the module."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from timm.models.vision_transformer import VisionTransformer
from torch import nn
from torchvision.models import resnet18

from simclr.config import hardware, validate_config
from simclr.config.hardware import (
    DeviceFacts,
    choose,
    cpu_bf16_flag,
    device_facts,
    is_convolutional,
)
from simclr.config.schema import RunConfig
from simclr.errors import ConfigError

CPU_BF16 = DeviceFacts("cpu", "AMD EPYC", True, "AVX512_BF16")
CPU_PLAIN = DeviceFacts("cpu", "old Xeon", False, "no bf16 ISA")
CUDA_BF16 = DeviceFacts("cuda", "NVIDIA H200", True, "torch.cuda.is_bf16_supported()")
CUDA_PLAIN = DeviceFacts("cuda", "Tesla V100", False, "torch.cuda.is_bf16_supported()")
MPS = DeviceFacts("mps", "mps", False, "not measured on mps")


def run_cfg(precision: object = "auto", channels_last: object = "auto", deterministic=False):
    cfg = OmegaConf.structured(RunConfig)
    cfg.trainer.precision = precision
    cfg.encoder.channels_last = channels_last
    cfg.trainer.deterministic = deterministic
    return cfg


@pytest.mark.parametrize(
    "facts,conv,precision,channels_last",
    [
        (CPU_BF16, True, "bf16-mixed", True),
        (CPU_PLAIN, True, "32-true", True),  # NHWC helps oneDNN in float32 too
        (CUDA_BF16, True, "bf16-mixed", True),
        (CUDA_PLAIN, True, "32-true", False),  # float32 on CUDA: NCHW is as fast
        (CPU_BF16, False, "bf16-mixed", False),  # a ViT: one convolution, nothing to gain
        (CUDA_BF16, False, "bf16-mixed", False),
        (MPS, True, "32-true", False),
    ],
)
def test_auto_rules(facts, conv, precision, channels_last):
    choice = choose(run_cfg(), facts, conv)
    assert (choice.device, choice.precision, choice.channels_last) == (
        facts.kind,
        precision,
        channels_last,
    )
    assert choice.precision_reason.startswith("auto:") and facts.name in choice.precision_reason
    assert choice.channels_last_reason.startswith("auto:")


@pytest.mark.parametrize(
    "facts,precision",
    [(CPU_BF16, "32-true"), (CPU_PLAIN, "32-true"), (CUDA_BF16, "bf16-mixed")],
)
def test_deterministic_runs_stay_float32_on_the_cpu(facts, precision):
    # oneDNN's bf16 weight gradients depend on buffer alignment: not bit-reproducible.
    choice = choose(run_cfg(deterministic=True), facts, convolutional=True)
    assert choice.precision == precision
    if facts is CPU_BF16:
        assert "trainer.deterministic=true" in choice.precision_reason
        assert choice.channels_last  # float32 NHWC is reproducible
    explicit = choose(run_cfg("bf16-mixed", deterministic=True), facts, convolutional=True)
    assert explicit.precision == "bf16-mixed"


@pytest.mark.parametrize("facts", [CPU_BF16, CPU_PLAIN, CUDA_BF16, CUDA_PLAIN])
def test_explicit_values_win(facts):
    for precision in ("32-true", "bf16-mixed", "16-mixed"):
        for channels_last in (True, False):
            choice = choose(run_cfg(precision, channels_last), facts, convolutional=True)
            assert (choice.precision, choice.channels_last) == (precision, channels_last)
            assert choice.precision_reason == "set in trainer.precision"
            assert choice.channels_last_reason == "set in encoder.channels_last"


def test_cuda_fp16_precision_turns_channels_last_on():
    choice = choose(run_cfg("16-mixed"), CUDA_PLAIN, convolutional=True)
    assert choice.channels_last and choice.autocast_dtype == torch.float16


@pytest.mark.parametrize(
    "caps,flag",
    [
        ({"avx512_bf16": True, "avx512_f": True}, "avx512_bf16"),
        ({"amx_bf16": True, "avx512_bf16": True}, "amx_bf16"),
        ({"architecture": "aarch64", "bf16": True}, "bf16"),
        ({"architecture": "aarch64", "sve_bf16": True, "bf16": False}, "sve_bf16"),
        ({"avx512_f": True, "avx2": True, "avx512_bf16": False}, None),
        ({}, None),
    ],
)
def test_cpu_bf16_flag(caps, flag):
    assert cpu_bf16_flag(caps) == flag


def test_cpu_facts_follow_torch_cpu_capabilities():
    caps = dict(torch.cpu.get_capabilities())
    facts = device_facts("cpu")
    native = bool(caps.get("avx512_bf16") or caps.get("amx_bf16") or caps.get("bf16"))
    assert facts.kind == "cpu" and facts.bf16 == (native or bool(caps.get("sve_bf16")))


def test_cuda_facts_without_a_gpu_say_no_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_facts("cuda").bf16 is False


def test_resnets_are_convolutional_and_a_vit_is_not():
    vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2)
    assert is_convolutional(resnet18()) and not is_convolutional(vit)
    assert not is_convolutional(nn.Linear(3, 3))


def test_autocast_dtypes():
    cpu = DeviceFacts("cpu", "x", False, "")
    assert choose(run_cfg("bf16-mixed"), cpu, True).autocast_dtype == torch.bfloat16
    assert choose(run_cfg("bf16-true"), cpu, True).autocast_dtype == torch.bfloat16
    assert choose(run_cfg("32-true"), cpu, True).autocast_dtype is None


@pytest.mark.parametrize(
    "key,value,named",
    [
        ("trainer.precision", "bf16", "trainer.precision='bf16'"),
        ("trainer.precision", "fp8", "trainer.precision='fp8'"),
        ("encoder.channels_last", 1, "encoder.channels_last=1"),
        ("encoder.channels_last", "yes", "encoder.channels_last='yes'"),
    ],
)
def test_bad_values_are_refused_in_one_line(key, value, named):
    cfg = OmegaConf.structured(RunConfig)
    OmegaConf.update(cfg, key, value)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert named in str(err.value) and "\n" not in str(err.value)


def test_defaults_are_auto(compose_config):
    cfg = compose_config()
    assert cfg.trainer.precision == "auto" and cfg.encoder.channels_last == "auto"
    validate_config(cfg)
    gpu = compose_config("trainer=gpu")
    assert gpu.trainer.precision == "auto"


@pytest.mark.parametrize("native,expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_build_trainer_resolves_auto(compose_config, tmp_path, monkeypatch, native, expected):
    from simclr.runs.rundir import RunDir
    from simclr.training import trainer as training

    facts = DeviceFacts("cpu", "fake CPU", native, "faked")
    monkeypatch.setattr(training, "device_facts", lambda kind: facts)
    cfg = compose_config("trainer.accelerator=cpu", "trainer.logger=none")
    trainer = training.build_trainer(cfg, RunDir(tmp_path), callbacks=[])
    assert trainer.precision == expected
    explicit = compose_config(
        "trainer.accelerator=cpu", "trainer.logger=none", "trainer.precision=32-true"
    )
    assert training.build_trainer(explicit, RunDir(tmp_path), callbacks=[]).precision == "32-true"
    reproducible = compose_config(
        "trainer.accelerator=cpu", "trainer.logger=none", "trainer.deterministic=true"
    )
    assert training.build_trainer(reproducible, RunDir(tmp_path), callbacks=[]).precision == (
        "32-true"
    )


def test_module_puts_a_conv_encoder_in_channels_last_on_the_cpu(compose_config, monkeypatch):
    from simclr.training.module import SimCLRModule

    monkeypatch.setattr(hardware, "device_facts", lambda kind: CPU_PLAIN)
    args = ("experiment=none", "encoder=resnet18", "encoder.stem=cifar", "trainer.accelerator=cpu")
    module = SimCLRModule(compose_config(*args))
    assert module.hardware.channels_last and module.hardware.precision == "32-true"
    assert module.encoder.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    off = SimCLRModule(compose_config(*args, "encoder.channels_last=false"))
    assert not off.hardware.channels_last
    assert off.encoder.conv1.weight.is_contiguous()


def test_the_modules_ntxent_is_float32_under_bf16_autocast(compose_config):
    from simclr.training.module import SimCLRModule

    args = ("experiment=none", "encoder=resnet18", "encoder.stem=cifar", "head.hidden_dim=16")
    module = SimCLRModule(compose_config(*args))
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = module.head(module.encoder(module._prepare(torch.cat([x, x.flip(-1)]))))
        assert z.dtype == torch.bfloat16  # the network ran in bf16
        loss = module.criterion(*z.chunk(2))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(module.encoder.conv1.weight.grad).all()
