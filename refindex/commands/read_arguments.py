"""Command-line options of the I/O engine, shared by every command that reads sources."""

from __future__ import annotations

import argparse
import dataclasses
import os

from refindex.io import ReadOptions


def add_read_arguments(parser: argparse.ArgumentParser) -> None:
    """``--endpoint-url``, ``--anon`` and ``-O FIELD=VALUE`` for any ReadOptions field."""
    parser.add_argument("--endpoint-url", help="S3-compatible endpoint, e.g. http://127.0.0.1:8333")
    parser.add_argument("--anon", action="store_true", help="unsigned (anonymous) S3 requests")
    fields = ", ".join(f.name for f in dataclasses.fields(ReadOptions))
    parser.add_argument("-O", "--option", action="append", default=[], metavar="FIELD=VALUE",
                        help=f"set a read option (also REFINDEX_<FIELD> in the environment): "
                             f"{fields}")


def read_options_from(args: argparse.Namespace) -> ReadOptions:
    """The ReadOptions the environment and the command line ask for (the line wins)."""
    environ = dict(os.environ)
    known = {f.name for f in dataclasses.fields(ReadOptions)}
    for setting in args.option:
        name, sep, value = setting.partition("=")
        name = name.strip().lower()
        if not sep or name not in known:
            raise argparse.ArgumentTypeError(f"-O {setting!r}: expected FIELD=VALUE with FIELD "
                                             f"one of {', '.join(sorted(known))}")
        environ[f"REFINDEX_{name.upper()}"] = value
    changes = {}
    if args.endpoint_url:
        changes["endpoint_url"] = args.endpoint_url
    if args.anon:
        changes["anon"] = True
    try:
        return ReadOptions.from_env(environ).replace(**changes)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
