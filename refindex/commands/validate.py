"""``refindex validate``: do a sidecar's sources still exist, unchanged? Exit code for scripts."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from refindex.commands import SUMMARIES, exit_codes
from refindex.commands.read_arguments import add_read_arguments, read_options_from
from refindex.validate import (
    DEFAULT_SAMPLE,
    SourceCheck,
    SourceStatus,
    ValidationReport,
    validate,
)

EXIT_MISMATCH = exit_codes.MISMATCH
"""A source is missing, resized or changed, or a sampled chunk did not read or decode."""
EXIT_UNCHECKED = exit_codes.UNCHECKED
"""No mismatch found, but a source could not be checked (unreachable, or refused)."""

_STYLES = {SourceStatus.OK: "green", SourceStatus.UNVERIFIED: "yellow"}
_LISTED = 50  # sources listed one by one; of more, only those not ok


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "validate", help=SUMMARIES["validate"],
        description="Ask every source of a sidecar for its size, ETag and last-modified time "
                    "(one HEAD each, in parallel; stat for local files) and compare them with "
                    "what the sidecar recorded. --deep also reads and decodes a sample of "
                    "each array's chunks. Exit codes: 0 every source as recorded; 1 the "
                    f"sidecar cannot be read; {EXIT_MISMATCH} a source is missing, resized or "
                    f"changed, or a sampled chunk failed; {EXIT_UNCHECKED} a source could not "
                    "be checked (unreachable, or refused by the source policy).")
    parser.add_argument("sidecar", help="sidecar path or URL, or a collection directory")
    parser.add_argument("--deep", action="store_true",
                        help="also read and decode a sample of chunks of every array")
    parser.add_argument("--sample", type=_positive, default=DEFAULT_SAMPLE, metavar="N",
                        help=f"chunks per array that --deep reads: the first, the last and "
                             f"random ones (default {DEFAULT_SAMPLE})")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random choice of --deep's chunks (default 0)")
    parser.add_argument("--json", action="store_true",
                        help="print the report as JSON on standard output, nothing else")
    add_read_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    report = validate(args.sidecar, read_options_from(args), deep=args.deep,
                      sample=args.sample, seed=args.seed)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print(report, Console())
    return exit_code(report)


def exit_code(report: ValidationReport) -> int:
    """0 all as recorded, ``EXIT_MISMATCH`` or else ``EXIT_UNCHECKED`` (see the module)."""
    if report.mismatched:
        return EXIT_MISMATCH
    if report.unchecked:
        return EXIT_UNCHECKED
    return 0


def _print(report: ValidationReport, console: Console) -> None:
    console.print(sources_table(report))
    for array in report.arrays or ():
        for failure in array.failures:
            console.print(f"[red]chunk {escape(failure.key)}:[/] {escape(failure.error)}",
                          highlight=False, soft_wrap=True)
    console.print(summary(report), highlight=False, soft_wrap=True)


def sources_table(report: ValidationReport) -> Table:
    table = Table(title=f"sources of {escape(report.sidecar)}")
    for column in ("source", "status", "size", "ETag / last modified", "detail"):
        table.add_column(column, justify="right" if column == "size" else "left")
    checks = report.sources
    if len(checks) > _LISTED:  # a collection: the sources that need attention, and a count
        checks = [c for c in report.sources if c.status != SourceStatus.OK]
    for check in checks:
        style = _STYLES.get(check.status, "red")
        table.add_row(escape(check.source.url), f"[{style}]{check.status}[/]", _size(check),
                      escape(_identity(check)), escape(check.detail))
    if len(checks) < len(report.sources):
        table.add_row(f"... {len(report.sources) - len(checks):,} more", "[green]ok[/]", "", "",
                      "")
    return table


def summary(report: ValidationReport) -> str:
    """One line: the sources per status, the deep reads, and the verdict."""
    counts = ", ".join(f"{count} {status}" for status, count in report.counts().items())
    total = len(report.sources)
    line = f"{_plural(total, 'source')}: {counts or 'none'}"
    if report.arrays is not None:
        read = sum(len(array.read) for array in report.arrays)
        skipped = sum(array.skipped for array in report.arrays)
        failed = len(report.chunk_failures)
        arrays = _plural(len(report.arrays), "array")
        line += (f"; --deep: {_plural(read, 'chunk')} of {arrays} read and decoded, "
                 f"{failed} failed" + (f", {skipped} skipped (source failed)" if skipped else ""))
    if report.mismatched:
        return line + f" — the sidecar no longer matches its sources (exit {EXIT_MISMATCH})"
    if report.unchecked:
        return line + f" — some sources could not be checked (exit {EXIT_UNCHECKED})"
    return line + " — as recorded"


def _size(check: SourceCheck) -> str:
    recorded = check.source.size
    found = check.found.size if check.found is not None else None
    shown = f"{recorded:,}" if recorded is not None else "?"
    if found is not None and found != recorded:
        shown += f" → {found:,}"
    return shown


def _identity(check: SourceCheck) -> str:
    """The ETag (or last-modified time) the comparison rested on: recorded, and what it is
    now when that differs."""
    recorded, found = check.source, check.found
    field = "etag" if recorded.etag and (found is None or found.etag) else "last_modified"
    then = getattr(recorded, field) or recorded.etag or recorded.last_modified
    now = getattr(found, field) if found is not None else None
    if check.status in (SourceStatus.CHANGED, SourceStatus.RESIZED) and then and now != then:
        return f"{then} → {now or '-'}"
    return then or "-"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
