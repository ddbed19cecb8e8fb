"""Run the fuzzer: ``python -m tests.fuzz.run --cases 5000`` (from the project root).

Cases go round-robin over the seed kinds (``tests.fuzz.seeds``) to one worker subprocess at a
time (``tests.fuzz.worker``), which is restarted after a hang or a crash. Prints the counts
(tried, clean error, exact, unverified, and every bad outcome) and each bad case with the
``KIND CASE`` that reproduces it (``--only KIND --first CASE --cases 1``). Exits 1 when any
case was bad.
"""

from __future__ import annotations

import argparse
import collections
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import ujson

from tests.fuzz.cases import BAD
from tests.fuzz.mutate import mutate
from tests.fuzz.seeds import SEED_KINDS, build_seeds

ROOT = Path(__file__).resolve().parents[2]
_STARTUP = 120.0  # seconds a new worker may take to import everything


@dataclass
class Report:
    counts: collections.Counter = field(default_factory=collections.Counter)
    bad: list[dict] = field(default_factory=list)
    library: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, result: dict) -> None:
        self.counts["tried"] += 1
        self.counts[result["outcome"]] += 1
        if result["outcome"] in BAD:
            self.bad.append(result)
        elif result["outcome"] == "library":
            self.library.append(result)

    def summary(self) -> str:
        order = ("tried", "error", "exact", "unverified", "library", *BAD)
        counts = ", ".join(f"{name} {self.counts[name]}" for name in order)
        lines = [f"fuzz: {counts} in {self.seconds:.1f} s"]
        lines += [f"  {r['outcome']}: {r['kind']} {r['case']}: {r['detail']}"
                  for r in self.bad + self.library]
        return "\n".join(lines)


class _Worker:
    def __init__(self, seeds: Path, timeout: float, memory: int) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT), MALLOC_ARENA_MAX="2",
                   AWS_EC2_METADATA_DISABLED="true", PYTHONWARNINGS="ignore")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz.worker", "--seeds", str(seeds),
             "--timeout", str(timeout), "--memory", str(memory)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=ROOT, text=True,
            bufsize=1)
        self._pending = b""  # bytes of the worker's answers read but not yet taken
        self._ready = False

    def _line(self, deadline: float) -> str | None:
        """The worker's next line; "" when it died; None at ``deadline``. (A buffered
        ``readline`` after ``select`` could hold a second line where select cannot see it.)"""
        fd = self.process.stdout.fileno()
        while b"\n" not in self._pending:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return None
            data = os.read(fd, 65536)
            if not data:
                return ""
            self._pending += data
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode()

    def run(self, kind: str, case: int, limit: float) -> dict:
        """The worker's answer for one case, or a hang or crash the worker cannot report."""
        self.process.stdin.write(f"{kind} {case}\n")
        self.process.stdin.flush()
        if not self._ready:  # the imports of a new worker are not the case's time
            self._ready = self._line(time.monotonic() + _STARTUP) not in (None, "")
        deadline = time.monotonic() + limit
        in_oracle = False
        while True:
            line = self._line(deadline)
            if line is None:
                self.stop()
                return {"kind": kind, "case": case, "outcome": "hang",
                        "detail": f"no answer in {limit} s (killed)"}
            if not line:
                code = self.process.wait()
                if in_oracle:  # the reference reader died, not refindex: nothing to judge
                    return {"kind": kind, "case": case, "outcome": "unverified",
                            "detail": f"reference reader crashed ({code})"}
                return {"kind": kind, "case": case, "outcome": "crash",
                        "detail": f"worker died with {code}"}
            answer = ujson.loads(line)
            if answer.get("phase") == "oracle":
                in_oracle = True
                continue
            return answer

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


# h5py on its own, doing what a scan does to every object (attributes, dimension scales,
# values): libhdf5 itself loops forever or aborts on some damaged files, which no caller of it
# can prevent; such a case is counted as "library", not as refindex's hang or crash.
_H5PY_WALK = """
import sys, h5py
def touch(obj):
    for name in obj.attrs:
        try: obj.attrs[name]
        except Exception: pass
with h5py.File(sys.argv[1], "r") as f:
    touch(f)
    def visit(name, obj):
        touch(obj)
        if isinstance(obj, h5py.Dataset):
            try: h5py.h5ds.is_scale(obj.id); obj[()]
            except Exception: pass
    try: f.visititems(visit)
    except Exception: pass
"""


def _library_verdict(result: dict, seeds: Path, timeout: float) -> dict:
    """``result``, or a "library" outcome when h5py alone hangs or dies on the same mutant."""
    if result["outcome"] not in ("hang", "crash") or not result["kind"].startswith("hdf5"):
        return result
    seed = (seeds / f"seed-{result['kind']}").read_bytes()
    with tempfile.TemporaryDirectory(prefix="refindex-fuzz-h5py-") as directory:
        mutant = Path(directory) / "mutant.h5"
        mutant.write_bytes(mutate(result["kind"], seed, result["case"]))
        try:
            code = subprocess.run([sys.executable, "-c", _H5PY_WALK, str(mutant)],
                                  capture_output=True, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            code = "a hang"
    if code == 0:
        return result
    return {**result, "outcome": "library",
            "detail": f"{result['detail']}; h5py alone ends in {code} too (libhdf5)"}


def cases(kinds: tuple[str, ...], count: int, first: int = 0) -> Iterator[tuple[str, int]]:
    """``count`` cases, round-robin over ``kinds``, numbered from ``first`` per kind."""
    for n in range(count):
        yield kinds[n % len(kinds)], first + n // len(kinds)


def fuzz(count: int, kinds: tuple[str, ...] = SEED_KINDS, first: int = 0,
         timeout: float = 10.0, memory: int = 3 * 2**30, progress: bool = False) -> Report:
    """Run ``count`` cases; their report."""
    report = Report()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="refindex-fuzz-seeds-") as directory:
        seeds = Path(directory)
        build_seeds(seeds)
        worker = None
        try:
            for kind, case in cases(kinds, count, first):
                if worker is None or not worker.alive():
                    worker = _Worker(seeds, timeout, memory)
                # The first case also pays for the worker's imports.
                # The worker's alarm ends a slow case at ``timeout``; a loop in C ignores it.
                result = worker.run(kind, case, timeout + 5)
                report.add(_library_verdict(result, seeds, 2 * timeout))
                if progress and report.counts["tried"] % 100 == 0:
                    print(f"  {report.counts['tried']} cases ...", file=sys.stderr)
        finally:
            if worker is not None:
                worker.process.stdin.close()
                worker.stop()
    report.seconds = time.perf_counter() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=500, help="how many cases in all")
    parser.add_argument("--first", type=int, default=0, help="the first case number per kind")
    parser.add_argument("--only", action="append", choices=SEED_KINDS,
                        help="fuzz only this seed kind (repeatable)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per case")
    parser.add_argument("--memory", type=int, default=3 * 2**30,
                        help="the worker's address-space limit, bytes")
    args = parser.parse_args(argv)
    kinds = tuple(args.only) if args.only else SEED_KINDS
    report = fuzz(args.cases, kinds, args.first, args.timeout, args.memory, progress=True)
    print(report.summary())
    return 1 if report.bad else 0


if __name__ == "__main__":
    sys.exit(main())
