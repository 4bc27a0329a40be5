"""Issue 13, kinds "Images" and "Paths": decompression bombs, EXIF orientation, high bit
depths, truncation of every accepted format, hidden files, and `~` in path values.

The tests marked "console" run `simclr-pretrain` in this process (tests/support/cli_harness.py)
and assert the exit status, the one error line and that no earlier file changed.
"""

from __future__ import annotations

import shlex
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from torch import nn

from simclr import embed
from simclr.api import compose
from simclr.config.schema import DataConfig
from simclr.console import evaluate as eval_cli
from simclr.console import pretrain
from simclr.console.preflight import expand_home
from simclr.data import build_datasets
from simclr.data.folder import ImageFileDataset
from simclr.data.images import folder_files, load_rgb, screen_images
from simclr.errors import ConfigError, DataError
from tests.conftest import REPO, write_image
from tests.support.cli_harness import assert_one_line_error, assert_unchanged, run_cli, snapshot
from tests.unit.console.test_bad_input import TINY


def data_cfg(**overrides: object) -> object:
    return OmegaConf.merge(OmegaConf.structured(DataConfig), overrides)


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def bomb_png(path: Path, side: int = 30_000) -> Path:
    """A 150-byte PNG whose header declares side x side pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit grayscale
    body = _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + _chunk(b"IEND", b""))
    return path


def flat_folder(root: Path, suffix: str = ".png", count: int = 8, size: int = 24) -> Path:
    rng = np.random.default_rng(0)
    for i in range(count):
        write_image(root / f"{i}{suffix}", rng, size=size)
    return root


def pretrain_argv(root: Path, run: Path, *extra: str) -> list[str]:
    return [*TINY, f"data.root={root}", f"hydra.run.dir={run}", *extra]


# --- decompression bombs -------------------------------------------------------------


def test_default_pixel_limit_is_pils():
    assert DataConfig.max_image_pixels == 1024 * 1024 * 1024 // 4 // 3  # PIL's default
    assert DataConfig.max_image_pixels == Image.MAX_IMAGE_PIXELS


def test_console_a_decompression_bomb_is_named_under_fail(tmp_path, capfd):
    root = flat_folder(tmp_path / "images")
    bomb_png(root / "bomb.png")
    run = tmp_path / "run"
    before = snapshot(tmp_path)
    result = run_cli(pretrain.cli, "simclr-pretrain", pretrain_argv(root, run), capfd)
    assert_one_line_error(
        result, "simclr-pretrain", str(root / "bomb.png"), "900,000,000 pixels",
        "data.max_image_pixels=89478485", "decompression bomb", "data.on_bad_image=skip",
    )  # fmt: skip
    assert_unchanged(before)
    assert not (run / "checkpoints").exists()  # refused before training


def test_console_a_lowered_pixel_limit_names_the_large_image(tmp_path, capfd):
    root = flat_folder(tmp_path / "images", size=24)  # 576 pixels each
    write_image(root / "large.png", np.random.default_rng(1), size=40)  # 1600 pixels
    argv = pretrain_argv(root, tmp_path / "run", "data.max_image_pixels=1000")
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert_one_line_error(
        result, "simclr-pretrain", str(root / "large.png"), "40x40 = 1,600 pixels",
        "data.max_image_pixels=1000",
    )  # fmt: skip


@pytest.mark.parametrize("value", ["0", "-5"])
def test_console_a_pixel_limit_below_one_is_refused(tmp_path, capfd, value):
    root = flat_folder(tmp_path / "images")
    argv = pretrain_argv(root, tmp_path / "run", f"data.max_image_pixels={value}")
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert_one_line_error(result, "simclr-pretrain", f"data.max_image_pixels={value}", ">= 1")


def test_console_a_decompression_bomb_is_skipped_under_skip(tmp_path, labeled_folder, capfd):
    bomb = bomb_png(labeled_folder / "train" / "cat" / "bomb.png")
    argv = pretrain_argv(labeled_folder, tmp_path / "run", "data.on_bad_image=skip")
    with pytest.warns(UserWarning, match=r"leaving out 1 unreadable file\(s\), e\.g\. .*bomb\.png"):
        result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert result.code == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    assert bomb.is_file()  # left out, never touched


def test_a_bomb_found_only_when_decoding_is_named_or_skipped(tmp_path):
    paths = [tmp_path / f"{i}.png" for i in range(3)]
    for i, path in enumerate(paths):
        write_image(path, np.random.default_rng(i))
    bomb_png(paths[1])  # replaced after the folder was screened
    with pytest.raises(DataError, match=r"1\.png: 900,000,000 pixels"):
        ImageFileDataset(paths, [0, 0, 0])[1]
    with pytest.warns(UserWarning, match=r"1\.png"):
        image, _ = ImageFileDataset(paths, [0, 0, 0], on_bad_image="skip")[1]
    assert np.array_equal(np.asarray(image), np.asarray(load_rgb(paths[2])))  # the next one


def test_a_limit_above_pils_raises_its_global_and_a_lower_one_leaves_it(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after
    pil_limits = [Image.MAX_IMAGE_PIXELS]
    bomb = bomb_png(tmp_path / "big.png", side=20_000)  # 400 M: PIL alone refuses it
    assert screen_images([bomb], max_pixels=1000)  # refused by our limit...
    pil_limits.append(Image.MAX_IMAGE_PIXELS)  # ...without lowering PIL's
    assert screen_images([bomb], max_pixels=500_000_000) == {}  # allowed as configured
    pil_limits.append(Image.MAX_IMAGE_PIXELS)
    assert pil_limits == [89_478_485, 89_478_485, 500_000_000]


# --- EXIF orientation ----------------------------------------------------------------


def _rotated_jpeg(path: Path) -> np.ndarray:
    """A 40 x 20 JPEG (white left half) tagged 'rotate 90 CW to display' (orientation 6);
    returns the pixels as displayed, 20 wide and 40 tall, white at the top."""
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(path, exif=exif.tobytes(), quality=100)
    return np.rot90(stored, k=-1)  # numpy's independent rotation: clockwise by 90 degrees


def test_exif_orientation_is_applied_for_training_evaluation_and_embed(tmp_path):
    displayed = _rotated_jpeg(tmp_path / "photo.jpg")
    assert displayed.shape == (40, 20, 3)
    loaded = np.asarray(load_rgb(tmp_path / "photo.jpg")).astype(int)
    assert loaded.shape == displayed.shape
    assert np.abs(loaded - displayed).max() < 40  # JPEG noise at the edge, nothing more
    # Training and evaluation read a folder through the same dataset.
    splits = build_datasets(data_cfg(name="folder", root=str(tmp_path)))
    image, _ = splits.unlabeled[0]
    assert np.array_equal(np.asarray(image), loaded.astype(np.uint8))
    # embed, with an encoder that returns the pixels it is given.
    pixels = embed(nn.Flatten(), tmp_path, transform=_as_tensor, progress=False)
    assert np.array_equal(pixels[0], _as_tensor(image).flatten().numpy())


def _as_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float()


# --- bit depths ----------------------------------------------------------------------

VALUES_16 = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)


@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_16_bit_images_are_divided_by_257(tmp_path, suffix):
    Image.fromarray(VALUES_16).save(tmp_path / f"a{suffix}")
    got = np.asarray(load_rgb(tmp_path / f"a{suffix}"))
    assert got.shape == (1, 4, 3) and (got == got[..., :1]).all()  # gray in RGB
    assert got[0, :, 0].tolist() == [0, 1, 128, 255]  # 32896 / 257 = 128


def test_32_bit_integer_images_are_stretched_from_their_range(tmp_path):
    values = np.array([[-1000, 0, 1000, 3000]], dtype=np.int32)
    Image.fromarray(values).save(tmp_path / "a.tif")
    assert Image.open(tmp_path / "a.tif").mode == "I"
    want = np.rint((values - values.min()) / (values.max() - values.min()) * 255)
    assert np.asarray(load_rgb(tmp_path / "a.tif"))[0, :, 0].tolist() == want[0].tolist()


@pytest.mark.parametrize(
    "values,want",
    [
        ([0.0, 0.25, 0.5, 1.0], [0, 64, 128, 255]),  # [0, 1]: times 255
        ([0.0, 0.1, 0.2, 0.4], [0, 26, 51, 102]),  # a dark [0, 1] image stays dark
        ([-2.0, 0.0, 2.0, 6.0], [0, 64, 128, 255]),  # another range: min-max
        ([10.0, np.nan, 20.0, np.inf], [0, 0, 255, 0]),  # non-finite pixels: 0
        ([3.0, 3.0, 3.0, 3.0], [0, 0, 0, 0]),  # constant outside [0, 1]: black
    ],
)
def test_float_images_are_scaled_not_clipped(tmp_path, values, want):
    Image.fromarray(np.array([values], dtype=np.float32)).save(tmp_path / "a.tif")
    assert Image.open(tmp_path / "a.tif").mode == "F"
    assert np.asarray(load_rgb(tmp_path / "a.tif"))[0, :, 0].tolist() == want


# --- truncation of every accepted format ---------------------------------------------

FORMATS = [".bmp", ".webp", ".tif", ".gif", ".ppm", ".png", ".jpg"]


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("keep", [0.6, 0.99])
def test_truncated_files_of_every_format_are_caught_by_the_screening(tmp_path, suffix, keep):
    root = flat_folder(tmp_path, suffix, count=3, size=48)
    cut = root / f"1{suffix}"
    data = cut.read_bytes()
    cut.write_bytes(data[: int(len(data) * keep)])
    assert list(screen_images(sorted(root.iterdir()))) == [cut]


def test_a_compressed_tiff_cut_short_is_screened(tmp_path):
    arr = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    Image.fromarray(arr).save(tmp_path / "cut.tif", compression="tiff_lzw")
    cut = tmp_path / "cut.tif"
    cut.write_bytes(cut.read_bytes()[:-40])  # the directory PIL writes last is cut
    assert list(screen_images([tmp_path / "lzw.tif", cut])) == [cut]


@pytest.mark.parametrize("suffix", [".bmp", ".webp"])
def test_console_a_truncated_bmp_or_webp_is_named(tmp_path, capfd, suffix):
    root = flat_folder(tmp_path / "images", suffix, size=32)
    cut = root / f"5{suffix}"
    cut.write_bytes(cut.read_bytes()[:-30])
    before = snapshot(tmp_path)
    result = run_cli(pretrain.cli, "simclr-pretrain", pretrain_argv(root, tmp_path / "r"), capfd)
    assert_one_line_error(result, "simclr-pretrain", str(cut), "truncated")
    assert_unchanged(before)


# --- hidden files --------------------------------------------------------------------


def _with_hidden_files(root: Path) -> None:
    """What macOS, Jupyter and git leave next to images; none of it is an image."""
    (root / "._0.png").write_bytes(b"\x00\x05\x16\x07AppleDouble resource fork")
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    write_image(root / ".ipynb_checkpoints" / "0-checkpoint.png", np.random.default_rng(0))
    write_image(root / ".git" / "lfs" / "blob.png", np.random.default_rng(0))


def test_folder_reader_and_embed_agree_on_the_image_files(tmp_path):
    root = flat_folder(tmp_path / "images", count=4)
    _with_hidden_files(root)
    (root / "sub").mkdir()
    write_image(root / "sub" / "x.JPG", np.random.default_rng(0))
    want = [root / f"{i}.png" for i in range(4)] + [root / "sub" / "x.JPG"]
    assert folder_files(root) == (want, [])
    splits = build_datasets(data_cfg(name="folder", root=str(root)))
    assert splits.unlabeled.paths == want
    _, embedded = embed(nn.Flatten(), root, transform=_thumb, progress=False, return_paths=True)
    assert embedded == want


def _thumb(image: Image.Image) -> torch.Tensor:
    return _as_tensor(image.resize((8, 8)))


def test_console_hidden_files_and_folders_are_not_images_or_classes(
    tmp_path, labeled_folder, capfd
):
    for split in ("train", "test"):
        _with_hidden_files(labeled_folder / split)  # .ipynb_checkpoints/ would be a class
        _with_hidden_files(labeled_folder / split / "cat")  # ._0.png would not decode
    argv = pretrain_argv(labeled_folder, tmp_path / "run")
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert result.code == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


# --- `~` in path values --------------------------------------------------------------


def test_console_tilde_paths_work_unquoted_and_quoted(tmp_path, labeled_folder, capfd, monkeypatch):
    home = labeled_folder.parent  # the fixture's folder is ~/images
    monkeypatch.setenv("HOME", str(home))
    argv = [*TINY, "data.root=~/images", "hydra.run.dir='~/runs/a b'"]
    result = run_cli(pretrain.cli, "simclr-pretrain", argv, capfd)
    assert result.code == 0, result.stderr[-3000:]
    run = home / "runs" / "a b"  # not ./~/runs
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert OmegaConf.load(run / ".hydra" / "config.yaml").data.root == str(labeled_folder)
    assert not (Path.cwd() / "~").exists()


def _readme_commands_with_tilde() -> list[list[str]]:
    lines = (REPO / "README.md").read_text().splitlines()
    found = [shlex.split(line.split("#")[0]) for line in lines if "=~" in line]
    return [words for words in found if words and words[0].startswith("simclr-")]


def test_console_the_readmes_tilde_examples_work_as_written(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    commands = _readme_commands_with_tilde()
    assert len(commands) >= 2  # data.root=~/data/cifar10, data.root=~/photos
    mains = {"simclr-pretrain": pretrain.cli, "simclr-eval": eval_cli.cli}
    for program, *args in commands:
        before = snapshot(tmp_path)
        result = run_cli(mains[program], program, [*args, "--cfg", "job"], capfd)
        assert result.code == 0, (args, result.stderr[-2000:])
        assert_unchanged(before)
    cfg, _ = compose(["experiment=cifar10_resnet18", "data.root=~/data/cifar10"])
    assert cfg.data.root == str(tmp_path / "data" / "cifar10")  # the Python API too


def test_expand_home_rules(monkeypatch):
    monkeypatch.setenv("HOME", "/home/u")
    assert expand_home(
        ["data.root=~/x", "checkpoint=~", "-m", "data.root=~/a,~/b", "data.root='~/q r'",
         "~data.root", "~data.root=~/y", "data.root=[~/a]", "optim.lr=0.1", "data.root=/x/~y"]
    ) == [
        "data.root=/home/u/x", "checkpoint=/home/u", "-m", "data.root=/home/u/a,/home/u/b",
        "data.root='/home/u/q r'", "~data.root", "~data.root=/home/u/y", "data.root=[~/a]",
        "optim.lr=0.1", "data.root=/x/~y",
    ]  # fmt: skip
    monkeypatch.setenv("HOME", "/home/my user")
    assert expand_home(["data.root=~/x"]) == ["data.root='/home/my user/x'"]  # quoted for Hydra
    with pytest.raises(ConfigError, match=r"data\.root=~nosuchuser1/x: no user 'nosuchuser1'"):
        expand_home(["data.root=~nosuchuser1/x"])


def test_console_an_unknown_user_is_one_line(tmp_path, capfd):
    result = run_cli(pretrain.cli, "simclr-pretrain", ["data.root=~nosuchuser1/x"], capfd)
    assert_one_line_error(result, "simclr-pretrain", "data.root=~nosuchuser1/x", "no user")
