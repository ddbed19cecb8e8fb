"""The ``refindex`` command: one subcommand per module of refindex/commands/."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from refindex.commands import SUMMARIES, exit_codes
from refindex.errors import RefindexError

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


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser of ``refindex``: every command's arguments when ``argv`` is None; else only
    those of the command ``argv`` names, the others listed by name and summary, so that a
    command imports its own module alone (``refindex --help`` imports none)."""
    parser = argparse.ArgumentParser(
        prog="refindex", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    named = _command_named(argv) if argv is not None else None
    for name, summary in SUMMARIES.items():
        if argv is None or name == named:
            importlib.import_module(f"refindex.commands.{name}").add_parser(commands)
        else:
            commands.add_parser(name, help=summary)
    return parser


def _command_named(argv: list[str]) -> str | None:
    """The command ``argv`` names: its first word that is not an option."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (see refindex/commands/exit_codes.py)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    try:
        return args.run(args) or exit_codes.OK
    except RefindexError as exc:
        if args.debug:
            raise
        # Messages quote references like "[url, offset, length]": not Rich markup.
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return exit_codes.ERROR
    except argparse.ArgumentTypeError as exc:
        console.print(f"[bold red]usage error:[/] {escape(str(exc))}", highlight=False,
                      soft_wrap=True)
        return exit_codes.USAGE
    except KeyboardInterrupt:
        console.print("interrupted")
        return exit_codes.INTERRUPTED
    except OSError as exc:
        if args.debug:
            raise
        # The machine's doing (a missing directory, no permission, a full disk), not ours.
        where = f"{exc.filename}: " if exc.filename else ""
        console.print(f"[bold red]error:[/] refindex {args.command}: "
                      f"{escape(where + (exc.strerror or _one_line(exc)))}",
                      highlight=False, soft_wrap=True)
        return exit_codes.ERROR
    except Exception as exc:  # noqa: BLE001 - the last resort: anything else is our bug
        if args.debug:
            raise
        console.print(f"[bold red]error:[/] refindex {args.command}: {escape(_one_line(exc))}; "
                      "this is a bug; run with --debug for the traceback",
                      highlight=False, soft_wrap=True)
        return exit_codes.ERROR


def _one_line(exc: BaseException) -> str:
    """``Type: message`` of an unexpected exception, on one line."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


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
