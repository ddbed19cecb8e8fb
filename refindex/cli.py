"""The ``refindex`` command: one subcommand per module of refindex/commands/."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from refindex.errors import RefindexError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

DESCRIPTION = """\
refindex makes a few large HDF5 / NetCDF4 files read like a fast, native Zarr store.

  refindex scan data/ocean.nc -o ocean.refs.json         # index a local file
  refindex scan s3://bucket/ocean.nc -o ocean.refs.json  # ... or one in object storage
  refindex scan 's3://bucket/daily/*.nc' --combine -o daily.refs/  # many files, one dataset
  refindex combine a.refs.json b.refs.json -o ab.refs.json  # combine sidecars
  refindex inspect ocean.refs.json                       # what the sidecar describes
  refindex read ocean.refs.json --stats                  # read it, count the requests
  refindex validate ocean.refs.json                      # are its sources unchanged?
  refindex convert ocean.refs.json k.json --format kerchunk  # for kerchunk/fsspec users
  refindex pack brain.zarr -o packed/ --upload s3://bucket/brain/  # few large tars + sidecar
  refindex upload big.h5 --to s3://bucket/data/          # parallel multipart upload
  refindex serve ocean.refs.json --port 8000             # a Zarr store over HTTP, for all
  refindex demo                                          # the whole round trip, offline

Then: xr.open_dataset("ocean.refs.json", engine="refindex"), or
zarr.open_group(refindex.open_store("ocean.refs.json"), mode="r").
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="refindex", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    from refindex.commands import (
        combine,
        convert,
        demo,
        inspect,
        pack,
        read,
        scan,
        serve,
        upload,
        validate,
    )

    for module in (scan, combine, inspect, read, validate, convert, pack, upload, serve, demo):
        module.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 error, 2 usage, 130 interrupted;
    ``validate`` adds 3 and 4, see refindex/commands/validate.py)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    try:
        return args.run(args) or EXIT_OK
    except RefindexError as exc:
        if args.debug:
            raise
        # Messages quote references like "[url, offset, length]": not Rich markup.
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return EXIT_ERROR
    except argparse.ArgumentTypeError as exc:
        console.print(f"[bold red]usage error:[/] {escape(str(exc))}", highlight=False,
                      soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.print("interrupted")
        return EXIT_INTERRUPTED


def output_path(source: str, output: str | None, many: bool) -> Path:
    """Where the sidecar of ``source`` goes: ``output`` (a directory when ``many``), or
    ``<name>.refs.json`` in the current directory."""
    name = source.rstrip("/").rsplit("/", 1)[-1] + ".refs.json"
    if output is None:
        return Path(name)
    if many or output.endswith("/") or Path(output).is_dir():
        Path(output).mkdir(parents=True, exist_ok=True)
        return Path(output) / name
    return Path(output)


if __name__ == "__main__":
    sys.exit(main())
