"""evaluate_encoder end to end on the digits at 8 px: files, schema, cache, figures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hydra import compose as compose_config
from hydra import initialize_config_dir
from omegaconf import DictConfig

from simclr.config import register_configs
from simclr.errors import OutputError
from simclr.evaluation import evaluate_encoder, features, headline_metric
from simclr.evaluation.report_schema import SCHEMA_VERSION, load_report, validate_report
from simclr.models import build_encoder
from tests.conftest import CONF_DIR

TINY = [
    "data.image_size=8",
    "data.num_workers=0",
    "eval.fractions=[0.1,1.0]",
    "eval.seeds=2",
    "eval.seeds_full=1",
    "eval.mlp.epochs=20",
    "eval.mlp.hidden_dim=32",
]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Small convolutions on a shared 2-core machine: one thread is many times faster.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def compose(*overrides: str) -> DictConfig:
    register_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose_config("config", overrides=list(overrides))


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """One evaluation shared by the tests below (each reads, none modifies it)."""
    cfg = compose(*TINY)
    torch.manual_seed(1)
    encoder = build_encoder(cfg.encoder)
    out = tmp_path_factory.mktemp("run")
    report = evaluate_encoder(
        encoder, cfg, out, pretrain_seconds=12.5, command="simclr-pretrain x=1"
    )
    return cfg, encoder, out, report


def test_report_files_exist_and_json_validates(evaluated):
    _, _, out, report_md = evaluated
    assert report_md == out / "report.md"
    for name in ("report.md", "report.json", "label_efficiency.png", "embedding.png"):
        assert (out / name).stat().st_size > 0, name
    report = load_report(out / "report.json")
    assert report.schema_version == SCHEMA_VERSION
    cells = {(r.representation, r.evaluator, r.fraction): r for r in report.results}
    assert set(cells) == {
        (rep, ev, f)
        for rep in ("simclr", "random_init", "raw_pixels")
        for ev in ("linear", "knn", "mlp")
        for f in (0.1, 1.0)
    }
    for r in report.results:
        assert 0.0 <= r.mean <= 1.0 and r.n_seeds == (1 if r.fraction == 1.0 else 2)
        assert r.mean == pytest.approx(float(np.mean(r.accuracies)))
    assert cells[("raw_pixels", "linear", 1.0)].mean > 0.8  # 8x8 digits are easy
    assert report.data.n_train == 1257 and report.data.n_test == 540
    assert report.timing.pretrain_seconds == 12.5
    assert report.headline.mean == cells[("simclr", "linear", 0.1)].mean
    assert headline_metric(report_md) == report.headline.mean
    assert report.config["data"]["image_size"] == 8 and len(report.config_hash) == 64


def test_markdown_has_the_table_and_the_setup(evaluated):
    text = evaluated[3].read_text()
    assert "| Evaluator | Representation | 10% labels | 100% labels |" in text
    for label in ("SimCLR", "Random init", "Raw pixels", "kNN", "MLP", "Linear"):
        assert label in text
    for field in (
        "Command",
        "`simclr-pretrain x=1`",
        "Config hash",
        "Machine",
        "Versions",
        "Wall time",
    ):
        assert field in text
    assert "pretraining 12s" in text or "pretraining 13s" in text


def test_features_are_read_from_the_cache_the_second_time(evaluated, monkeypatch, tmp_path):
    cfg, encoder, out, _ = evaluated
    cached = sorted(p.name for p in (out / "features").iterdir())
    assert [n.split("-")[0] for n in cached] == ["random_init", "raw_pixels", "simclr"]

    def no_extraction(*args, **kwargs):
        raise AssertionError("features were extracted again")

    monkeypatch.setattr(features, "extract", no_extraction)
    monkeypatch.setattr(cfg.eval, "evaluators", ["knn"])
    again = evaluate_encoder(encoder, cfg, tmp_path, cache_dir=out / "features")
    assert again.is_file()
    assert sorted(p.name for p in (out / "features").iterdir()) == cached


def test_other_weights_or_data_get_other_cache_keys():
    cfg = compose("data.image_size=8")
    encoder = build_encoder(cfg.encoder)
    before = features.weights_identity(encoder)
    with torch.no_grad():
        encoder.conv1.weight[0, 0, 0, 0] += 1e-3
    assert features.weights_identity(encoder) != before
    key = features.cache_key("m", cfg.data, "t")
    assert features.cache_key("m2", cfg.data, "t") != key
    assert features.cache_key("m", cfg.data, "t2") != key
    cfg.data.image_size = 16
    assert features.cache_key("m", cfg.data, "t") != key
    cfg.data.image_size, cfg.data.batch_size = 8, 7  # batching does not change a feature
    assert features.cache_key("m", cfg.data, "t") == key


def test_a_report_off_schema_is_refused(evaluated, tmp_path):
    data = json.loads((evaluated[2] / "report.json").read_text())
    data["results"][0]["mean"] = "high"
    with pytest.raises(OutputError, match="schema"):
        validate_report(data)
    del data["results"][0]["mean"]
    with pytest.raises(OutputError, match="mean"):
        validate_report(data)


def test_changed_classes_or_sizes_under_the_same_root_get_other_cache_keys():
    cfg = compose("data.image_size=8")
    before = features.cache_key("m", cfg.data, "t", {"classes": ["a", "b"], "sizes": [10, 4]})
    renamed = features.cache_key("m", cfg.data, "t", {"classes": ["a", "c"], "sizes": [10, 4]})
    grown = features.cache_key("m", cfg.data, "t", {"classes": ["a", "b"], "sizes": [12, 4]})
    assert len({before, renamed, grown}) == 3
