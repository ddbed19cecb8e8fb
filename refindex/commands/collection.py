"""``refindex scan`` of many sources: a collection directory, kept up to date."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from refindex.collection import CollectionReport, scan_collection
from refindex.commands import exit_codes
from refindex.io import ReadOptions
from refindex.io.stats import format_bytes
from refindex.scan import ScanOptions


def run_collection(args: argparse.Namespace, options: ScanOptions, read_options: ReadOptions,
                   console: Console) -> int:
    from refindex.commands.scan import combine_options_from

    combine_options = combine_options_from(args) if args.combine else None
    client = _dask_client(args.dask) if args.dask else None
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("scanning members", total=None)

        def advance(stage: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            report = scan_collection(args.sources, args.output, from_file=args.from_file,
                                     options=options, read_options=read_options,
                                     jobs=args.jobs, client=client, fail_fast=args.fail_fast,
                                     combine_options=combine_options, progress=advance)
        finally:
            if client is not None:
                client.close()
    _report(console, report, args.output)
    if report.failed:
        return exit_codes.ERROR if args.fail_fast else exit_codes.PARTIAL
    return exit_codes.LEFT_OUT if report.left_out else exit_codes.OK


def _dask_client(address: str):
    try:
        from distributed import Client
    except ImportError:
        raise argparse.ArgumentTypeError("--dask needs dask.distributed: pip install "
                                         "'dask[distributed]'") from None
    return Client(address)


def _report(console: Console, report: CollectionReport, output: str) -> None:
    def say(text: str) -> None:
        console.print(text, highlight=False, soft_wrap=True, markup=False)

    line = (f"{output}: {report.listed:,} members listed: {report.scanned:,} scanned, "
            f"{report.kept:,} unchanged, {report.removed:,} removed, {len(report.failed):,} "
            f"failed in {report.seconds:.2f} s")
    if report.requests:
        line += f"; read {format_bytes(report.fetched)} in {report.requests:,} requests"
    say(line)
    for skipped in report.skipped:
        say(f"  skipped: {skipped}")
    for left_out in report.left_out:
        say(f"  left out: {left_out}")
    for failure in report.failed:
        say(f"  failed: {failure.url}: {failure.error}")
    if report.combined is not None:
        index = report.combined
        dims = ", ".join(f"{name} ({info['length']:,})"
                         for name, info in index.combined.get("dims", {}).items())
        say(f"combined {index.combined.get('members', 0):,} members along {dims or '-'}: "
            f"{len(index.arrays)} arrays, {index.chunk_count():,} chunks → {output}")
