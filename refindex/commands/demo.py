"""``refindex demo``: the whole round trip on this machine, no cloud account needed."""

from __future__ import annotations

import argparse

from refindex.commands import SUMMARIES


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "demo", help=SUMMARIES["demo"],
        description="Writes a sample NetCDF4 file, starts an embedded S3 server (SeaweedFS) on "
                    "127.0.0.1, uploads the file, scans it straight from S3, reads it through "
                    "xarray (engine='refindex') and checks every value against netCDF4's, "
                    "printing what was read and what it cost. Needs the [demo] extra.")
    parser.add_argument("--keep", metavar="DIR",
                        help="keep the sample file and sidecar in DIR (default: a temporary "
                             "directory that is removed)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from refindex.demo.run import run_demo

    return 0 if run_demo(keep=args.keep) else 1
