"""A command deletes only what it created, and --force replaces only its own artefact.

Each refusal asserts exit 2, the one line, and an md5 snapshot of every file that
existed before (sources, destinations, teachers, user folders) unchanged with nothing
added. Each failure after the output directory was made asserts that what the
command made is gone and what was there before is not.
"""

from __future__ import annotations

import errno
import shutil
import sys
from pathlib import Path

import pytest

from simclr.console import distill, export, prepare, pretrain, report
from simclr.data.prepare import MANIFEST, prepare_shards, read_manifest
from tests.conftest import write_labeled_folder
from tests.support.cli_harness import assert_one_line_error, run_cli, tiny_run
from tests.support.snapshot import Snapshot

TINY = tiny_run()


def export_cli() -> None:
    sys.exit(export.cli())  # argparse commands return their status


def report_cli() -> None:
    sys.exit(report.cli())


def _refused(capfd, main, program: str, argv: list[str], roots: list[Path], *named: str):
    before = Snapshot(*roots)
    result = run_cli(main, program, argv, capfd)
    assert_one_line_error(result, program, *named)
    before.assert_untouched()
    return result


@pytest.fixture(scope="module")
def shards(tmp_path_factory, shared_labeled_folder) -> Path:
    """A shard set written by simclr-prepare (copied by tests that replace it)."""
    dest = tmp_path_factory.mktemp("shards") / "dest"
    prepare_shards(shared_labeled_folder, str(dest), workers=1, progress=False)
    return dest


# --- simclr-prepare -----------------------------------------------------------------


def test_prepare_into_its_own_source_is_refused(labeled_folder, capfd):
    argv = [str(labeled_folder), str(labeled_folder), "--force", "--quiet"]
    _refused(capfd, prepare.cli, "simclr-prepare", argv, [labeled_folder], "is SRC=")


def test_prepare_into_the_sources_parent_is_refused(tmp_path, capfd):
    images = write_labeled_folder(tmp_path / "data" / "images")
    (tmp_path / "data" / "labels.csv").write_text("a sibling file of the user's\n")
    argv = [str(images), str(tmp_path / "data"), "--force", "--quiet"]
    _refused(capfd, prepare.cli, "simclr-prepare", argv, [tmp_path], "contains SRC=")


def test_prepare_into_the_source_itself_is_refused(labeled_folder, capfd):
    argv = [str(labeled_folder), str(labeled_folder / "train" / "shards"), "--quiet"]
    _refused(capfd, prepare.cli, "simclr-prepare", argv, [labeled_folder], "lies inside SRC=")


@pytest.mark.parametrize("size", ["10XB", "abc", "0", "0MB", "-5MB"])
def test_a_bad_chunk_size_is_refused_before_old_shards_are_touched(
    size, shards, shared_labeled_folder, capfd
):
    argv = [str(shared_labeled_folder), str(shards), "--force", "--quiet", f"--chunk-bytes={size}"]
    roots = [shards, shared_labeled_folder]
    _refused(capfd, prepare.cli, "simclr-prepare", argv, roots, f"--chunk-bytes={size}")


@pytest.mark.parametrize(
    "stranger", ["notes.txt", "train/notes.txt", "train/chunk-9-9.bin", "images/a.png"]
)
def test_force_refuses_a_dest_holding_anything_but_shards(
    stranger, shards, shared_labeled_folder, tmp_path, capfd
):
    dest = tmp_path / "dest"
    shutil.copytree(shards, dest)
    (dest / stranger).parent.mkdir(parents=True, exist_ok=True)
    (dest / stranger).write_text("the user's\n")
    argv = [str(shared_labeled_folder), str(dest), "--force", "--quiet"]
    _refused(capfd, prepare.cli, "simclr-prepare", argv, [tmp_path], "not only shards")


def test_force_replaces_a_shard_set_only_once_the_new_one_is_written(
    shards, labeled_folder, tmp_path, capfd
):
    dest = tmp_path / "dest"
    shutil.copytree(shards, dest)
    (labeled_folder / "train" / "cat" / "0.png").unlink()  # one image fewer this time
    result = run_cli(prepare.cli, "simclr-prepare", [str(labeled_folder), str(dest), "--force", "--quiet"], capfd)  # fmt: skip
    assert result.code == 0, result.stderr[-2000:]
    assert read_manifest(str(dest))["counts"] == {"train": 35, "test": 12}
    assert sorted(p.name for p in dest.iterdir()) == [MANIFEST, "test", "train"]  # no staging


@pytest.mark.parametrize("dest_state", ["new", "empty", "old-shards"])
def test_a_failed_prepare_removes_only_what_it_wrote(
    dest_state, shards, shared_labeled_folder, tmp_path, capfd, monkeypatch
):
    import litdata

    dest = tmp_path / "out" / "dest"
    if dest_state == "empty":
        dest.mkdir(parents=True)
    elif dest_state == "old-shards":
        shutil.copytree(shards, dest)
    before = Snapshot(tmp_path)

    def disk_full(*, output_dir: str, **_: object) -> None:
        Path(output_dir).mkdir(parents=True)
        (Path(output_dir) / "chunk-0-0.bin").write_bytes(b"half a shard")
        raise OSError(errno.ENOSPC, "No space left on device", output_dir)

    monkeypatch.setattr(litdata, "optimize", disk_full)
    argv = [str(shared_labeled_folder), str(dest), "--quiet", "--force"]
    result = run_cli(prepare.cli, "simclr-prepare", argv, capfd)
    assert_one_line_error(result, "simclr-prepare", "No space left on device")
    before.assert_untouched()  # a new DEST (and out/) gone, an empty one empty, old shards whole


# --- simclr-distill -------------------------------------------------------------------


def _teacher_dir(root: Path) -> Path:
    """A fine-tuning run's files (the refusals never read them)."""
    teacher = root / "teacher"
    teacher.mkdir(parents=True)
    (teacher / "classifier.ckpt").write_bytes(b"weights of the teacher")
    (teacher / "finetune.json").write_text("{}\n")
    (teacher / ".hydra").mkdir()
    (teacher / ".hydra" / "config.yaml").write_text("seed: 0\n")
    return teacher


def test_distill_into_its_teacher_is_refused(tmp_path, capfd):
    teacher = _teacher_dir(tmp_path)
    argv = [f"distill.teacher={teacher}", f"hydra.run.dir={teacher}"]
    _refused(capfd, distill.cli, "simclr-distill", argv, [tmp_path], str(teacher), "already holds")


@pytest.mark.parametrize("held", ["user-files", "two-finished-runs"])
def test_distill_into_a_folder_that_holds_something_is_refused(held, tmp_path, capfd):
    teacher = _teacher_dir(tmp_path)
    folder = tmp_path / "folder"
    if held == "user-files":
        (folder / "thesis").mkdir(parents=True)
        (folder / "thesis" / "draft.tex").write_text("\\section{Results}\n")
    else:
        for run in ("run-a", "run-b"):
            (folder / run / "checkpoints").mkdir(parents=True)
            (folder / run / "report.json").write_text("{}\n")
    argv = [f"distill.teacher={teacher}", f"hydra.run.dir={folder}"]
    _refused(capfd, distill.cli, "simclr-distill", argv, [tmp_path], str(folder), "already holds")


@pytest.mark.parametrize("folder_state", ["empty-user-folder", "new-nested"])
def test_a_failed_distill_removes_only_its_own_files(folder_state, tmp_path, labeled_folder, capfd):
    folder = tmp_path / "user" / "folder"
    if folder_state == "empty-user-folder":
        folder.mkdir(parents=True)
    else:
        folder = folder / "deeper" / "run"
    before = Snapshot(tmp_path)
    # Not a classifier: the job fails after Hydra wrote .hydra/ and the log.
    argv = [f"distill.teacher={labeled_folder}", f"hydra.run.dir={folder}"]
    result = run_cli(distill.cli, "simclr-distill", argv, capfd)
    assert_one_line_error(result, "simclr-distill", str(labeled_folder))
    before.assert_untouched()


@pytest.mark.parametrize("command", ["simclr-pretrain", "simclr-distill"])
def test_the_working_directory_as_output_is_refused_when_it_holds_files(
    command, tmp_path, labeled_folder, capfd, monkeypatch
):
    work = tmp_path / "work"
    work.mkdir()
    (work / "analysis.ipynb").write_text("{}\n")
    monkeypatch.chdir(work)
    teacher = _teacher_dir(tmp_path)
    main, argv = {
        "simclr-pretrain": (pretrain.cli, [*TINY, f"data.root={labeled_folder}"]),
        "simclr-distill": (distill.cli, [f"distill.teacher={teacher}"]),
    }[command]
    _refused(capfd, main, command, [*argv, "hydra.run.dir=."], [tmp_path], "analysis.ipynb")


@pytest.mark.parametrize("folder_state", ["empty-user-folder", "new-nested"])
def test_a_failed_pretrain_removes_only_its_own_files(
    folder_state, tmp_path, labeled_folder, capfd
):
    folder = tmp_path / "user" / "folder"
    if folder_state == "empty-user-folder":
        folder.mkdir(parents=True)
    else:
        folder = folder / "deeper" / "run"
    before = Snapshot(tmp_path)
    # 36 training images < one batch of 64: found when the data is read, in the job.
    argv = [*TINY, "data.batch_size=64", f"data.root={labeled_folder}", f"hydra.run.dir={folder}"]
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert_one_line_error(result, "simclr-pretrain", "fewer than one batch")
    before.assert_untouched()


# --- simclr-export --------------------------------------------------------------------


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    from tests.support.hub_helpers import make_checkpoint

    path, _, _ = make_checkpoint(tmp_path_factory.mktemp("weights") / "encoder.ckpt")
    return path


def test_export_onto_its_source_is_refused(weights, capfd):
    argv = [str(weights), str(weights.with_suffix(".safetensors"))]
    assert run_cli(export_cli, "simclr-export", argv, capfd).code == 0
    source = weights.with_suffix(".safetensors")
    _refused(capfd, export_cli, "simclr-export", [str(source), str(source), "--force"], [source.parent], "is SOURCE")  # fmt: skip


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_export_force_replaces_an_export_but_not_another_file(suffix, weights, tmp_path, capfd):
    dest = tmp_path / f"encoder{suffix}"
    dest.write_bytes(b"the user's own file, not an export")
    argv = [str(weights), str(dest), "--force"]
    _refused(capfd, export_cli, "simclr-export", argv, [tmp_path], str(dest), "not a")
    dest.unlink()
    assert run_cli(export_cli, "simclr-export", argv, capfd).code == 0
    assert run_cli(export_cli, "simclr-export", argv, capfd).code == 0  # its own: replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == [dest.name]  # no temporary left


# --- simclr-report --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--fraction", "0.37"], "no run under"),
        (["--fraction", "1.5"], "--fraction"),
        (["--evaluator", "bogus"], "--evaluator"),
        (["--representation", "bogus"], "--representation"),
    ],
)
def test_a_report_of_nothing_keeps_the_earlier_table(flags, named, tmp_path, capfd):
    from tests.unit.evaluation.test_sweep import make_multirun

    root = make_multirun(tmp_path / "multirun")
    assert run_cli(report_cli, "simclr-report", [str(root)], capfd).code == 0
    _refused(capfd, report_cli, "simclr-report", [str(root), *flags], [tmp_path], named)


# --- the Python API -------------------------------------------------------------------


def test_the_api_refuses_a_folder_with_files_and_leaves_it_alone(tmp_path, labeled_folder):
    import simclr
    from simclr.errors import OutputError

    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("the user's\n")
    before = Snapshot(tmp_path)
    with pytest.raises(OutputError, match=r"notes\.txt"):
        simclr.pretrain([*TINY, f"data.root={labeled_folder}"], run_dir=folder)
    weights = tmp_path / "weights.ckpt"
    weights.write_bytes(b"never read: the output directory is refused first")
    before = Snapshot(tmp_path)
    with pytest.raises(OutputError, match=r"already holds notes\.txt"):
        simclr.evaluate(weights, [], out_dir=folder)
    before.assert_untouched()


def test_a_failed_api_run_removes_only_what_it_made(tmp_path, labeled_folder):
    import simclr
    from simclr.errors import DataError

    before = Snapshot(tmp_path)
    with pytest.raises(DataError, match="fewer than one batch"):
        simclr.pretrain(
            [*TINY, "data.batch_size=64", f"data.root={labeled_folder}"],
            run_dir=tmp_path / "new" / "run",
        )
    before.assert_untouched()
