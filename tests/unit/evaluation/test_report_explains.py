"""Reports that explain themselves: spreads only over two seeds or more, chance levels in
the table and on the plots, figures titled with the data, split and counts, PCA axes
with their explained variance, error bars defined in a caption; checked on the
matplotlib objects, not on file sizes."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from simclr.data.splits import DataSplits
from simclr.evaluation import pipeline as assemble
from simclr.evaluation import plots
from simclr.evaluation.collect import Collected
from simclr.evaluation.features import FeatureSet
from simclr.evaluation.report import headline, render_markdown
from simclr.evaluation.report_schema import (
    SCHEMA_VERSION,
    DataInfo,
    Report,
    ResultRow,
    Timing,
    load_report,
    report_to_dict,
    validate_report,
)
from simclr.evaluation.sweep import SweepRow, sweep_figure
from simclr.evaluation.wording import chance_levels, class_counts, error_bar_caption, percent
from simclr.runs.rundir import RunDir

CLASSES = [str(i) for i in range(10)]
# 10 classes, train 132 of class 3 and 125 of the others, test 63 of class 3 and 53 of the others.
TRAIN_COUNTS = [125, 125, 125, 132, 125, 125, 125, 125, 125, 125]
TEST_COUNTS = [53, 53, 53, 63, 53, 53, 53, 53, 53, 53]


def rows(seeds: int, seeds_full: int) -> list[ResultRow]:
    out = []
    for rep, base in (("simclr", 0.80), ("random_init", 0.55), ("raw_pixels", 0.50)):
        for evaluator, shift in (("linear", 0.0), ("knn", -0.25)):  # kNN panel far lower
            for fraction, n in ((0.01, seeds), (0.1, seeds), (1.0, seeds_full)):
                mean = base + shift + fraction / 10
                accs = [mean + 0.01 * (i - (n - 1) / 2) for i in range(n)]
                std = float(np.std(accs, ddof=1)) if n > 1 else 0.0
                rows_n = round(sum(TRAIN_COUNTS) * fraction)
                out.append(ResultRow(rep, evaluator, fraction, mean, std, n, rows_n, accs))
    return out


def make_report(seeds: int = 10, seeds_full: int = 3, counts: bool = True) -> Report:
    results = rows(seeds, seeds_full)
    data = DataInfo(
        "digits",
        "digits (sklearn)",
        sum(TRAIN_COUNTS),
        sum(TEST_COUNTS),
        CLASSES,
        TRAIN_COUNTS if counts else None,
        TEST_COUNTS if counts else None,
    )
    return Report(
        schema_version=SCHEMA_VERSION,
        created="2026-11-23T10:00:00+00:00",
        command="simclr-pretrain",
        config_hash="0" * 64,
        preset="digits",
        encoder="resnet18 (cifar stem)",
        feature_dim=512,
        data=data,
        timing=Timing(100.0, 5.0, 20.0, 30.0),
        headline=headline(results, "linear", 0.1),
        results=results,
        config={"eval": {"embedding_method": "pca"}},
    )


def table_lines(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("| ") and "labels" not in line]


# --- numbers and words --------------------------------------------------------------


def test_a_single_seed_shows_the_number_alone():
    assert percent(0.859, 0.0, 1) == "85.9"
    assert percent(0.859, 0.012, 2) == "85.9 ± 1.2"
    md = render_markdown(make_report(seeds=1, seeds_full=1))
    assert "± 0.0" not in md and "±" not in "".join(table_lines(md))
    assert "1 seeds" not in md and "(1 seed)" in md
    assert "one seed per cell" in md


def test_mixed_seeds_show_the_spread_only_where_there_are_two():
    md = render_markdown(make_report(seeds=10, seeds_full=1))
    simclr_linear = next(line for line in md.splitlines() if line.startswith("| Linear | SimCLR"))
    cells = [c.strip() for c in simclr_linear.strip("|").split("|")][2:]
    assert "±" in cells[0] and "±" in cells[1] and "±" not in cells[2]
    assert "10 seeds" in md and "1257 labels × 1 seed" in md
    assert "mean ± std over 10 seeds" in md  # the headline


def test_chance_and_majority_rows_in_the_table():
    md = render_markdown(make_report())
    chance = [line for line in md.splitlines() if line.startswith("| Chance")]
    # 1/10, and always answering class 3 (the train split's largest) scores 63/540 on the test.
    assert chance == [
        "| Chance | 1 of 10 classes | 10.0 | 10.0 | 10.0 |",
        "| Chance | Majority class (3) | 11.7 | 11.7 | 11.7 |",
    ]


def test_balanced_data_shows_one_chance_row():
    report = make_report()
    report.data.train_counts = [126] * 10
    report.data.test_counts = [54] * 10
    md = render_markdown(report)
    assert [line for line in md.splitlines() if line.startswith("| Chance")] == [
        "| Chance | 1 of 10 classes | 10.0 | 10.0 | 10.0 |"
    ]


def test_chance_levels_against_counting_by_hand():
    rng = np.random.default_rng(0)
    y_train, y_test = rng.integers(0, 4, 200), rng.integers(0, 4, 90)
    data = DataInfo(
        "x", "x", 200, 90, list("abcd"), class_counts(y_train, 4), class_counts(y_test, 4)
    )
    levels = chance_levels(data)
    top = max(range(4), key=lambda c: (sum(y_train == c), -c))
    assert levels.uniform == 0.25
    assert levels.majority == pytest.approx(float(np.mean(y_test == top)))
    assert levels.majority_class == "abcd"[top]


def test_error_bar_caption_says_what_the_bars_are():
    assert error_bar_caption(rows(10, 3)) == (
        "bars: ± 1 sample std over 10 seeds at 1%, 10%; 3 seeds at 100%"
    )
    assert error_bar_caption(rows(5, 5)) == "bars: ± 1 sample std over 5 seeds"
    assert error_bar_caption(rows(10, 1)) == (
        "bars: ± 1 sample std over 10 seeds at 1%, 10%; no bar at 100% (one seed)"
    )
    assert error_bar_caption(rows(1, 1)) == "one seed per point: no error bars"


def test_a_version_1_report_still_loads_with_uniform_chance_only(tmp_path):
    data = report_to_dict(make_report())
    data["schema_version"] = 1
    del data["data"]["train_counts"], data["data"]["test_counts"]
    old = validate_report(data)
    assert old.data.train_counts is None
    levels = chance_levels(old.data)
    assert levels.uniform == 0.1 and levels.majority is None
    assert "| Chance | 1 of 10 classes |" in render_markdown(old)
    data["schema_version"] = 99
    with pytest.raises(Exception, match="schema_version=99"):
        validate_report(data)


# --- label_efficiency.png -----------------------------------------------------------


def chance_lines(ax) -> dict[str, float]:
    """label -> y of the horizontal lines drawn across the axes."""
    out = {}
    for line in ax.get_lines():
        y = np.asarray(line.get_ydata(), dtype=float)
        if len(y) == 2 and y[0] == y[1] and not str(line.get_label()).startswith("_"):
            out[str(line.get_label())] = float(y[0])
    return out


def test_label_efficiency_figure_explains_itself():
    report = make_report(seeds=10, seeds_full=3)
    fig = plots.label_efficiency_figure(report)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["Linear", "kNN"]
    title = fig._suptitle.get_text()
    for text in ("digits", "540 test images", "1257 train", "10 classes"):
        assert text in title, (text, title)
    # One y-range for the panels, although kNN's accuracies are far lower.
    assert axes[0].get_ylim() == axes[1].get_ylim()
    assert axes[1].get_shared_y_axes().joined(axes[0], axes[1])
    low, high = axes[0].get_ylim()
    assert low <= 10.0 and high >= 100 * max(r.mean for r in report.results)
    assert axes[0].get_ylabel() == "test accuracy (%)"
    assert all(ax.get_xlabel().startswith("labels used") for ax in axes)
    for ax in axes:  # chance and the majority class in every panel, at their values
        lines = chance_lines(ax)
        assert lines == {
            "chance (10.0%, 1 of 10)": pytest.approx(10.0),
            "majority class (11.7%)": pytest.approx(100 * 63 / 540),
        }
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert {"SimCLR", "Random init", "Raw pixels", "chance (10.0%, 1 of 10)"} <= set(legend)
    captions = [t.get_text() for t in fig.texts]
    assert "bars: ± 1 sample std over 10 seeds at 1%, 10%; 3 seeds at 100%" in captions


def test_label_efficiency_error_bars_are_the_std_and_absent_for_one_seed():
    report = make_report(seeds=10, seeds_full=1)
    fig = plots.label_efficiency_figure(report)
    ax = fig.axes[0]
    simclr = next(c for c in ax.containers if c.get_label() == "SimCLR")
    segments = simclr.lines[2][0].get_segments()
    halves = [abs(s[1][1] - s[0][1]) / 2 for s in segments]
    expected = [
        100 * r.std
        for r in report.results
        if (r.representation, r.evaluator) == ("simclr", "linear")
    ]
    assert halves[:2] == pytest.approx(expected[:2]) and halves[2] == 0.0


def test_label_efficiency_is_written_where_run_dir_says(tmp_path):
    path = RunDir(tmp_path).label_efficiency_png
    fig = plots.label_efficiency(make_report(), path)
    assert path.is_file() and fig._suptitle is not None


# --- embedding.png ------------------------------------------------------------------


def test_embedding_pca_axes_carry_the_explained_variance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6)) * np.array([5.0, 2.0, 1.0, 1.0, 1.0, 1.0])
    y = rng.integers(0, 3, 120)
    data = DataInfo("folder", "images", 300, 120, ["cat", "dog", "fox"])
    fig = plots.embedding_figure(
        {"simclr": (x, y), "random_init": (x[:, ::-1], y)}, data.classes, "pca", data=data
    )
    # The share of variance by hand: eigenvalues of the standardised features' covariance.
    z = (x - x.mean(0)) / x.std(0)
    eig = np.sort(np.linalg.eigvalsh(np.cov(z, rowvar=False)))[::-1]
    share = eig / eig.sum()
    ax = fig.axes[0]
    assert ax.get_xlabel() == f"PC1 ({100 * share[0]:.0f}% of variance)"
    assert ax.get_ylabel() == f"PC2 ({100 * share[1]:.0f}% of variance)"
    assert [a.get_title() for a in fig.axes] == ["SimCLR", "Random init"]
    title = fig._suptitle.get_text()
    assert "folder test split" in title and "120 points" in title and "PCA" in title
    legend = fig.legends[0]
    assert legend.get_title().get_text() == "class"
    assert [t.get_text() for t in legend.get_texts()] == ["cat", "dog", "fox"]


def test_embedding_tsne_axes_say_they_have_no_units():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4)), rng.integers(0, 2, 40)
    fig = plots.embedding_figure({"simclr": (x, y)}, ["a", "b"], "tsne", split="test")
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("t-SNE 1", "t-SNE 2")
    assert "t-SNE" in fig._suptitle.get_text() and "no units" in fig._suptitle.get_text()


# --- report.md lists the figures with captions, written by the assembly step --------


def test_report_md_lists_the_figures_with_their_captions(tmp_path):
    report = make_report(seeds=10, seeds_full=3)
    rng = np.random.default_rng(0)
    y_test = np.repeat(np.arange(10), TEST_COUNTS)
    feats = {
        name: FeatureSet(
            rng.normal(size=(20, 8)), rng.integers(0, 10, 20), rng.normal(size=(540, 8)), y_test
        )
        for name in ("simclr", "random_init")
    }
    splits = DataSplits(None, None, classes=CLASSES, source="digits")
    collected = Collected(OmegaConf.create({"image_size": 16}), splits, None, feats)
    md_path = assemble.write_report(report, collected, "pca", tmp_path, started=0.0)
    run = RunDir(tmp_path)
    assert md_path == run.report_md
    assert run.label_efficiency_png.is_file() and run.embedding_png.is_file()
    md = md_path.read_text()
    assert "## Figures" in md
    assert (
        "[label_efficiency.png](label_efficiency.png)" in md
        and "[embedding.png](embedding.png)" in md
    )
    assert "bars: ± 1 sample std over 10 seeds at 1%, 10%; 3 seeds at 100%" in md
    assert "the 540 test-split features" in md
    assert load_report(run.report_json).data.test_counts == TEST_COUNTS


# --- sweep.png ----------------------------------------------------------------------


def test_sweep_figure_has_a_title_the_baselines_and_chance():
    sweep = [
        SweepRow(
            "0",
            "ok",
            {"optim.lr": "0.3"},
            0.81,
            0.01,
            10,
            100.0,
            baselines={"random_init": 0.5, "raw_pixels": 0.45},
            chance=0.1,
        ),
        SweepRow(
            "1",
            "ok",
            {"optim.lr": "0.6"},
            0.86,
            0.0,
            1,
            100.0,
            baselines={"random_init": 0.52, "raw_pixels": 0.45},
            chance=0.1,
        ),
        SweepRow("2", "failed", {"optim.lr": "0.9"}, message="NaN"),
    ]
    fig = sweep_figure(sweep, ["optim.lr"], "simclr linear @ 10% labels", "Sweep a/b: x")
    ax = fig.axes[0]
    assert fig._suptitle.get_text() == "Sweep a/b: x"
    assert ax.get_xlabel() == "optim.lr" and ax.get_ylabel() == "simclr linear @ 10% labels (%)"
    assert chance_lines(ax) == {"chance (10.0%, 1 of 10)": pytest.approx(10.0)}
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"SimCLR", "Random init", "Raw pixels", "chance (10.0%, 1 of 10)"} <= set(legend)
    random_init = next(c for c in ax.collections if c.get_label() == "Random init")
    assert random_init.get_offsets()[:, 1].tolist() == pytest.approx([50.0, 52.0])
    # The run with one seed has no bar; the other ± its std.
    simclr = next(c for c in ax.containers if c.get_label() == "SimCLR")
    halves = [abs(s[1][1] - s[0][1]) / 2 for s in simclr.lines[2][0].get_segments()]
    assert halves == pytest.approx([1.0, 0.0])


def test_sweep_md_has_the_baselines_and_pretraining_time(tmp_path):
    from simclr.evaluation.report import write_json
    from simclr.evaluation.sweep import report_sweep

    for name, lr in (("0", "0.3"), ("1", "0.6")):
        job = tmp_path / name
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- optim.lr={lr}\n")
        report = make_report(seeds=1, seeds_full=1)
        report.timing.pretrain_seconds = 465.0
        write_json(report, job / "report.json")
    report_sweep(tmp_path)
    md = (tmp_path / "sweep.md").read_text()
    assert "Chance: 10.0 % (a uniform guess over 10 classes); majority class: 11.7 %." in md
    row = next(line for line in md.splitlines() if line.startswith("| 0 |"))
    # linear @ 10%: SimCLR 81.0, random init 56.0, raw pixels 51.0, one seed, 7m 45s.
    assert row == "| 0 | 0.3 | 81.0 | 56.0 | 51.0 | 1 | 7m 45s | ok |"
