"""`simclr-prepare SRC DEST`: write an image folder as LitData shards for `data=stream`.

    simclr-prepare ~/images /data/shards            # then: data=stream data.root=/data/shards
    simclr-prepare ~/images s3://bucket/shards --workers 16
    simclr-prepare ~/images /data/shards --force    # replace existing shards

Bad input (missing folder, no images, an existing DEST) is one line on stderr and
exit status 2, like the other commands. The library part is simclr.data.prepare.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from simclr.console.errors import run_command
from simclr.errors import ConfigError

EPILOG = """\
examples:
  simclr-prepare ~/images /data/shards              # then: data=stream data.root=/data/shards
  simclr-prepare ~/images s3://bucket/shards --workers 16
  simclr-prepare ~/images /data/shards --force      # replace existing shards

outputs: DEST/{train,test,unlabeled}/ shards and DEST/simclr_shards.json.
docs: docs/distributed.md ("Data at scale")
"""
PROGRAM = "simclr-prepare"


def parser() -> argparse.ArgumentParser:
    """The command line of simclr-prepare."""
    p = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Write an image folder (train/<class>/*, test/<class>/*, or flat) as "
        "LitData shards for data=stream.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", metavar="SRC", help="the image folder")
    p.add_argument("dest", metavar="DEST", help="a new directory, or an s3:// / gs:// URI")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    p.add_argument("--force", action="store_true", help="replace earlier shards at DEST")
    p.add_argument("--chunk-bytes", default="64MB", help="size of one shard file (64MB)")
    p.add_argument("--on-bad-image", choices=["fail", "skip"], default="fail")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run simclr-prepare; returns the exit status."""
    args = parser().parse_args(argv)

    def prepare() -> int:
        from simclr.data.prepare import prepare_shards

        if args.workers is not None and args.workers < 1:
            raise ConfigError(f"--workers={args.workers} must be >= 1")
        result = prepare_shards(
            args.src,
            args.dest,
            workers=args.workers,
            force=args.force,
            chunk_bytes=args.chunk_bytes,
            on_bad_image=args.on_bad_image,
            progress=not args.quiet,
        )
        counts = ", ".join(f"{split} {n}" for split, n in result.counts.items())
        print(
            f"shards: {result.dest} ({counts} images); train with data=stream data.root={result.dest}"
        )
        return 0

    return run_command(PROGRAM, prepare)


def cli() -> None:
    """Console entry point of `simclr-prepare`."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
