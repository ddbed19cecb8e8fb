"""``refindex serve``: sidecars served as Zarr stores over HTTP (refindex/serve/)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os

from refindex.commands import SUMMARIES
from refindex.commands.read_arguments import add_read_arguments, read_options_from
from refindex.serve.config import (
    TRANSCODE_MODES,
    DatasetConfig,
    ServeConfigError,
    default_name,
    load_config,
    make_config,
)


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "serve", help=SUMMARIES["serve"],
        description="Serve each sidecar as a Zarr store under /NAME/ (NAME: its file name "
                    "without .refs.json, or NAME=SIDECAR), read through one I/O engine. "
                    "Arrays whose codecs browsers cannot decode are re-encoded (--transcode). "
                    "Also /healthz and /metrics (Prometheus). See docs/serve.md.")
    parser.add_argument("sidecar", nargs="*", metavar="[NAME=]SIDECAR",
                        help="sidecar path or URL, optionally named")
    parser.add_argument("--config", metavar="FILE",
                        help="TOML (or .json) file of datasets and server options")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, help="port (default 8000)")
    parser.add_argument("--transcode", choices=TRANSCODE_MODES, default="auto",
                        help="re-encode chunks: auto (only arrays browsers cannot decode, with "
                             "gzip), raw/gzip/zstd/blosc (every array), off (never)")
    parser.add_argument("--zarr-format", choices=("2", "3", "both"), default="2",
                        help="metadata served: Zarr v2 keys, a v3 zarr.json view, or both")
    parser.add_argument("--token", default=os.environ.get("REFINDEX_SERVE_TOKEN"),
                        help="bearer token every request must send (default: the "
                             "REFINDEX_SERVE_TOKEN variable, which keeps it out of ps)")
    parser.add_argument("--cors-origin", action="append", metavar="ORIGIN",
                        help="origin browsers may read from (repeatable; default any)")
    parser.add_argument("--max-in-flight", type=int, metavar="N",
                        help="requests answered at once; more get 503 (default 256)")
    parser.add_argument("--readahead", action="store_true", default=None,
                        help="let the engine read ahead of clients walking an array in grid "
                             "order (ReadOptions.readahead_size; off by default)")
    parser.add_argument("--header-timeout", type=float, metavar="SECONDS",
                        help="seconds a request's headers may take to arrive; slower clients "
                             "are disconnected (default 10; 0: no limit)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="processes serving the port, each with its own engine and caches "
                             "(default 1)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no access log (one line per request on stderr), only warnings")
    add_read_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from refindex.serve import serve_forever

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")
    config = config_from(args)
    serve_forever(config, read_options_from(args))
    return 0


def config_from(args: argparse.Namespace):
    """The ServeConfig the command line (and its --config file) asks for."""
    formats = {"2": (2,), "3": (3,), "both": (2, 3)}[args.zarr_format]
    datasets = [_dataset(text, args.transcode, formats) for text in args.sidecar]
    options = {"host": args.host, "port": args.port, "token": args.token,
               "max_in_flight": args.max_in_flight, "workers": args.workers,
               "header_timeout": args.header_timeout, "readahead": args.readahead,
               "cors_origins": tuple(args.cors_origin) if args.cors_origin else None}
    options = {k: v for k, v in options.items() if v is not None}
    if args.config:
        config = load_config(args.config, **options)
        if datasets:
            config = make_config([*config.datasets, *datasets], **_fields(config))
        return config
    if not datasets:
        raise ServeConfigError("name at least one sidecar, or a --config file")
    return make_config(datasets, **options)


def _dataset(text: str, transcode: str, formats: tuple[int, ...]) -> DatasetConfig:
    name, sep, sidecar = text.partition("=")
    if not sep or "/" in name or ":" in name:
        name, sidecar = default_name(text), text
    return DatasetConfig(name, sidecar, transcode=transcode, zarr_formats=formats)


def _fields(config) -> dict:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
            if f.name != "datasets"}
