"""NT-Xent against an explicit float64 double loop, closed forms and gradcheck."""

from __future__ import annotations

import math

import pytest
import torch

from simclr.losses.ntxent import NTXentLoss, nt_xent


def reference_nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> float:
    """The SimCLR paper's definition, one anchor and one candidate at a time."""
    views = [row.tolist() for row in torch.cat([z1, z2]).double()]
    unit = []
    for v in views:
        norm = math.sqrt(sum(x * x for x in v))
        unit.append([x / norm for x in v])
    n2 = len(unit)
    n = n2 // 2

    def sim(i: int, k: int) -> float:
        return sum(a * b for a, b in zip(unit[i], unit[k], strict=True))

    total = 0.0
    for i in range(n2):
        j = i + n if i < n else i - n
        numerator = math.exp(sim(i, j) / temperature)
        denominator = 0.0
        for k in range(n2):
            if k != i:
                denominator += math.exp(sim(i, k) / temperature)
        total += -math.log(numerator / denominator)
    return total / n2


@pytest.mark.parametrize("n", [1, 2, 7, 16])
@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_matches_double_loop_reference(n: int, temperature: float) -> None:
    gen = torch.Generator().manual_seed(n * 100 + int(temperature * 10))
    z1 = torch.randn(n, 5, generator=gen)
    z2 = torch.randn(n, 5, generator=gen)
    got = nt_xent(z1, z2, temperature)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(reference_nt_xent(z1, z2, temperature), rel=1e-5, abs=1e-6)


def test_float64_matches_reference_tightly() -> None:
    gen = torch.Generator().manual_seed(3)
    z1 = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    z2 = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    got = nt_xent(z1, z2, 0.2)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(reference_nt_xent(z1, z2, 0.2), rel=1e-12)


@pytest.mark.parametrize("n", [1, 3, 8])
@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_identical_orthonormal_views_closed_form(n: int, temperature: float) -> None:
    # z1 == z2 with orthonormal rows: the positive has cosine 1, the 2N-2 negatives
    # cosine 0, so each anchor's loss is -log(e^(1/t) / (e^(1/t) + 2N - 2))
    # = log(1 + (2N - 2) e^(-1/t)).
    z = torch.eye(n, n + 2) * 3.0
    expected = math.log1p((2 * n - 2) * math.exp(-1.0 / temperature))
    assert nt_xent(z, z.clone(), temperature).item() == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_opposite_orthonormal_views_closed_form() -> None:
    # z2 = -z1: positive cosine -1, negatives 0: log(1 + (2N - 2) e^(1/t)).
    n, t = 4, 0.5
    z = torch.eye(n, n)
    expected = math.log1p((2 * n - 2) * math.exp(1.0 / t))
    assert nt_xent(z, -z, t).item() == pytest.approx(expected, rel=1e-6)


def test_self_similarity_is_masked_not_subtracted() -> None:
    # Views orthogonal to each other, small temperature: each anchor's own cosine
    # (1) dwarfs everything else. exp(1/0.01) overflows float32, so exp-then-subtract
    # gives inf/NaN, and a missing mask makes the loss ~100 instead of ~log(2N - 1).
    n, t = 3, 0.01
    eye = torch.eye(2 * n)
    z1, z2 = eye[:n], eye[n:]
    expected = reference_nt_xent(z1, z2, t)
    assert expected == pytest.approx(math.log(2 * n - 1))
    got = nt_xent(z1, z2, t)
    assert torch.isfinite(got)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # The two faulty variants really do differ, so this test can tell them apart.
    sims = torch.cat([z1, z2]) @ torch.cat([z1, z2]).T / t
    unmasked = torch.nn.functional.cross_entropy(sims, (torch.arange(2 * n) + n) % (2 * n))
    assert unmasked.item() > 10 * expected
    exp_sims = sims.exp()
    subtracted = exp_sims.sum(1) - exp_sims.diagonal()
    assert not torch.isfinite(subtracted).all()


def test_gradcheck_float64() -> None:
    gen = torch.Generator().manual_seed(0)
    z1 = torch.randn(4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: nt_xent(a, b, 0.3), (z1, z2))


def test_gradient_matches_finite_difference_of_reference() -> None:
    # Independent of autograd: central differences of the double-loop reference.
    gen = torch.Generator().manual_seed(1)
    z1 = torch.randn(3, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    nt_xent(z1, z2, 0.5).backward()
    assert z1.grad is not None
    h = 1e-6
    for i in range(3):
        for d in range(2):
            plus, minus = z1.detach().clone(), z1.detach().clone()
            plus[i, d] += h
            minus[i, d] -= h
            fd = (reference_nt_xent(plus, z2, 0.5) - reference_nt_xent(minus, z2, 0.5)) / (2 * h)
            assert z1.grad[i, d].item() == pytest.approx(fd, abs=1e-7)


@pytest.mark.parametrize("scale", [1.0, 1e4, 1e30])
def test_bf16_autocast_is_finite_and_close_to_float32(scale: float) -> None:
    gen = torch.Generator().manual_seed(2)
    layer = torch.nn.Linear(8, 6)
    x = torch.randn(2, 10, 8, generator=gen) * scale
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z1, z2 = layer(x[0]), layer(x[1])
        assert z1.dtype == torch.bfloat16
        loss = nt_xent(z1, z2, 0.1)
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss)
    # Same bf16 projections, computed in float32 by the reference: only the loss's
    # own arithmetic may differ, not the input rounding.
    expected = reference_nt_xent(z1.float(), z2.float(), 0.1)
    assert loss.item() == pytest.approx(expected, rel=1e-4)
    loss.backward()
    assert layer.weight.grad is not None
    assert torch.isfinite(layer.weight.grad).all()


def test_fp16_inputs_give_float32_loss() -> None:
    z1 = (torch.randn(5, 4) * 100).half()
    z2 = (torch.randn(5, 4) * 100).half()
    loss = nt_xent(z1, z2, 0.05)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(reference_nt_xent(z1.float(), z2.float(), 0.05), rel=1e-5)


def test_gather_without_process_group_is_single_process() -> None:
    z1, z2 = torch.randn(4, 3), torch.randn(4, 3)
    assert torch.equal(nt_xent(z1, z2, 0.5, gather=True), nt_xent(z1, z2, 0.5, gather=False))


@pytest.mark.parametrize("temperature", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_temperature_raises(temperature: float) -> None:
    z = torch.randn(2, 3)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(z, z, temperature)
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(temperature)


@pytest.mark.parametrize(
    ("shape1", "shape2"), [((2, 3), (3, 3)), ((2, 3), (2, 4)), ((6,), (6,)), ((0, 3), (0, 3))]
)
def test_bad_shapes_raise(shape1: tuple[int, ...], shape2: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="nt_xent"):
        nt_xent(torch.zeros(shape1), torch.zeros(shape2), 0.5)


def test_module_matches_function() -> None:
    z1, z2 = torch.randn(4, 3), torch.randn(4, 3)
    module = NTXentLoss(temperature=0.2, gather=False)
    assert "temperature=0.2" in repr(module)
    assert torch.equal(module(z1, z2), nt_xent(z1, z2, 0.2, gather=False))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cuda_autocast_matches_reference(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(4)
    layer = torch.nn.Linear(8, 6).cuda()
    x = (torch.randn(2, 16, 8, generator=gen) * 100).cuda()
    with torch.autocast("cuda", dtype=dtype):
        z1, z2 = layer(x[0]), layer(x[1])
        loss = nt_xent(z1, z2, 0.1)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert loss.item() == pytest.approx(reference_nt_xent(z1.cpu(), z2.cpu(), 0.1), rel=1e-4)
