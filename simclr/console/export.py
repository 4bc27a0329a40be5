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
        description="Export a pretrained encoder to a safetensors file (weights only, "
        "metadata as JSON in the header).",
    )
    parser.add_argument("source", help="run directory, Lightning .ckpt or .safetensors file")
    parser.add_argument("dest", help="the .safetensors file to write")
    parser.add_argument("--with-head", action="store_true", help="also store the projection head")
    parser.add_argument("--overwrite", action="store_true", help="replace DEST if it exists")
    args = parser.parse_args(argv)

    def export() -> int:
        from simclr.hub.export import export_encoder

        print(
            export_encoder(
                args.source, args.dest, with_head=args.with_head, overwrite=args.overwrite
            )
        )
        return 0

    return run_command(PROGRAM, export)


if __name__ == "__main__":
    sys.exit(cli())
