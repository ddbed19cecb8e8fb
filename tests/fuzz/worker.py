"""The fuzz worker: a subprocess that runs cases one after another, its address space limited
(``--memory`` bytes, so unbounded allocation fails as MemoryError instead of swapping the
machine) and each case limited in time by an alarm; the driver (``tests.fuzz.run``) kills it
if even the alarm cannot stop a case (a loop in C).

Protocol: the driver writes ``KIND CASE`` lines; for each the worker answers a JSON line
``{"kind", "case", "outcome", "detail", "seconds"}`` (the first after a ``{"phase":
"ready"}`` line once it has imported everything), after a ``{"phase": "oracle"}`` line
when it starts the reference reader (a crash after that is the reference reader's, not ours).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import ujson


class CaseTimeout(BaseException):
    """A case ran past its time (a BaseException, so no ``except Exception`` swallows it)."""


def _alarm(signum, frame):
    raise CaseTimeout


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory", type=int, default=3 * 2**30)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--seeds", required=True)
    args = parser.parse_args(argv)
    resource.setrlimit(resource.RLIMIT_AS, (args.memory, args.memory))
    signal.signal(signal.SIGALRM, _alarm)

    from tests.fuzz.cases import run_case
    from tests.fuzz.mutate import mutate, mutate_tree

    seeds = {path.name.removeprefix("seed-"): _contents(path)
             for path in Path(args.seeds).glob("seed-*")}
    out = sys.stdout
    out.write(ujson.dumps({"phase": "ready"}) + "\n")  # imports done: cases are timed now
    out.flush()
    with tempfile.TemporaryDirectory(prefix="refindex-fuzz-") as work:
        for line in sys.stdin:
            kind, case = line.split()
            mutant = Path(work) / f"mutant-{kind}-{case}"
            if isinstance(seeds[kind], dict):  # a directory sidecar
                for name, data in mutate_tree(kind, seeds[kind], int(case)).items():
                    (mutant / name).parent.mkdir(parents=True, exist_ok=True)
                    (mutant / name).write_bytes(data)
            else:
                mutant.write_bytes(mutate(kind, seeds[kind], int(case)))
            started = time.perf_counter()

            def oracle_starts():
                out.write(ujson.dumps({"phase": "oracle"}) + "\n")
                out.flush()

            signal.setitimer(signal.ITIMER_REAL, args.timeout)
            try:
                result = run_case(kind, mutant, oracle_starts)
                outcome, detail = result.outcome, result.detail
            except CaseTimeout:
                outcome, detail = "hang", f"ran past {args.timeout} s"
            except MemoryError:
                outcome, detail = "memory", f"needed more than {args.memory} bytes"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            for leftover in Path(work).iterdir():
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
            out.write(ujson.dumps({"kind": kind, "case": int(case), "outcome": outcome,
                                   "detail": detail,
                                   "seconds": round(time.perf_counter() - started, 3)}) + "\n")
            out.flush()
            if outcome == "hang":
                return  # its threads may still be busy: the driver starts a fresh worker


def _contents(path: Path) -> bytes | dict[str, bytes]:
    """A seed file's bytes, or a seed directory's files by relative path."""
    if path.is_file():
        return path.read_bytes()
    return {f.relative_to(path).as_posix(): f.read_bytes()
            for f in sorted(path.rglob("*")) if f.is_file()}


if __name__ == "__main__":
    main()
