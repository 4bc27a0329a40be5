"""The output-directory policy itself (simclr/runs/output.py), without a command around it."""

from __future__ import annotations

import json
import socket
import subprocess

import pytest

from simclr.errors import OutputError
from simclr.runs.output import Made, check_apart, claim, claim_of, make_dirs, shard_set_files
from simclr.runs.rundir import RunDir
from tests.support.snapshot import Snapshot


def test_undo_removes_what_appeared_and_the_directories_made_only(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "keep.txt").write_text("the user's")
    made = Made.at(tmp_path / "a" / "b" / "c", "out")
    assert made.made == (tmp_path / "a" / "b", tmp_path / "a" / "b" / "c")
    (made.path / ".hydra").mkdir()
    (made.path / ".hydra" / "config.yaml").write_text("x: 1\n")
    made.undo()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["keep.txt"]


def test_undo_in_a_directory_that_existed_keeps_it_and_its_files(tmp_path):
    (tmp_path / "mine.txt").write_text("the user's")
    made = Made.at(tmp_path, "out")
    (tmp_path / "new.txt").write_text("ours")
    made.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_a_made_directory_holding_another_process_lock_stays(tmp_path):
    made = Made.at(tmp_path / "run", "out")
    # Another process claims it meanwhile: its lock is not ours to remove.
    other = claim(tmp_path / "run", "the other command")
    made.undo()
    assert RunDir(tmp_path / "run").lock.is_file()
    other.release()


def test_a_refused_claim_puts_back_the_stale_lock_it_replaced(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    child = subprocess.Popen(["true"])
    child.wait()
    stale = {"pid": child.pid, "host": socket.gethostname(), "started": "then", "command": "x"}
    run.lock.write_text(json.dumps(stale))
    before = Snapshot(tmp_path)
    with pytest.raises(OutputError, match=f"stale lock of pid {child.pid}"):
        claim(run.path, "me", stale_hint="do this")
    before.assert_untouched()
    taken = claim(run.path, "me", take_stale=True)
    assert json.loads(run.lock.read_text())["command"] == "me" and claim_of(run.path) is taken
    taken.discard()
    before.assert_untouched()  # the stale lock is back, byte for byte


def test_make_dirs_names_a_file_in_the_way(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a directory"):
        make_dirs(tmp_path / "f" / "run", "hydra.run.dir")


@pytest.mark.parametrize(
    ("out", "relation"),
    [("data", "is"), ("data/train/run", "lies inside"), (".", "contains")],
)
def test_check_apart_names_the_relation(tmp_path, out, relation):
    (tmp_path / "data" / "train").mkdir(parents=True)
    with pytest.raises(OutputError, match=f"{relation} data.root="):
        check_apart("hydra.run.dir", tmp_path / out, {"data.root": tmp_path / "data"})
    check_apart("hydra.run.dir", tmp_path / "runs", {"data.root": tmp_path / "data"})


def test_a_shard_set_is_its_index_its_chunks_and_the_manifest(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "index.json").write_text(json.dumps({"chunks": [{"filename": "c.bin"}]}))
    (tmp_path / "train" / "c.bin").write_bytes(b"x")
    (tmp_path / "m.json").write_text("{}")
    assert shard_set_files(tmp_path, "m.json", ["train"]) is not None
    (tmp_path / "train" / "d.bin").write_bytes(b"a chunk the index does not name")
    assert shard_set_files(tmp_path, "m.json", ["train"]) is None
    (tmp_path / "train" / "d.bin").unlink()
    (tmp_path / "train" / "c.bin").unlink()  # a chunk the index names is missing
    assert shard_set_files(tmp_path, "m.json", ["train"]) is None


def test_two_claims_of_one_directory_one_wins(tmp_path):
    first = claim(tmp_path / "run", "first")
    with pytest.raises(OutputError, match="in use by a run in progress"):
        claim(tmp_path / "run", "second")
    first.discard()
    assert not (tmp_path / "run").exists()
