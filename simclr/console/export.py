"""`simclr-export SOURCE DEST.safetensors`: write a pretrained encoder to a file.

simclr-export outputs/2026-11-23/10-00-00 resnet18_simclr.safetensors
simclr-export run/checkpoints/last.ckpt encoder_and_head.safetensors --with-head
"""

from __future__ import annotations

import argparse
import sys

from simclr.console.errors import run_command

PROGRAM = "simclr-export"


def cli(argv: list[str] | None = None) -> int:
    """Console entry point of `simclr-export`."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Export a pretrained encoder: DEST.safetensors (weights, metadata as "
        "JSON in the header), DEST.onnx or DEST.pt (TorchScript), both traced with a "
        "dynamic batch axis and the preprocessing and provenance as metadata.",
    )
    parser.add_argument(
        "source", help="run directory, .ckpt, .safetensors, or a torchvision/lightly/timm file"
    )
    parser.add_argument("dest", help="the .safetensors, .onnx or .pt file to write")
    parser.add_argument("--with-head", action="store_true", help="also store the projection head")
    parser.add_argument(
        "--force", "--overwrite", dest="force", action="store_true", help="replace DEST"
    )
    parser.add_argument("--arch", help="for weights that record none: resnet50, timm:<name>, ...")
    parser.add_argument("--stem", help="for weights that record none: imagenet or cifar")
    args = parser.parse_args(argv)

    def export() -> int:
        from simclr.hub.export import export_encoder

        out = export_encoder(
            args.source,
            args.dest,
            with_head=args.with_head,
            force=args.force,
            arch=args.arch,
            stem=args.stem,
        )
        print(out)
        return 0

    return run_command(PROGRAM, export)


if __name__ == "__main__":
    sys.exit(cli())
