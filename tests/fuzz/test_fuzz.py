"""The fuzzer as a test: a few hundred mutants of every seed kind (tests.fuzz.seeds) each end
in a RefindexError or an exact read — never another exception, a wrong value, a hang or
unbounded memory. ``REFINDEX_FUZZ_CASES=5000`` runs more (or ``python -m tests.fuzz.run``)."""

from __future__ import annotations

import os

import pytest

from tests.fuzz.run import fuzz

pytestmark = pytest.mark.fuzz

CASES = int(os.environ.get("REFINDEX_FUZZ_CASES", "600"))


def test_every_mutant_is_refused_cleanly_or_read_exactly():
    report = fuzz(CASES, timeout=10.0)
    print(report.summary())
    assert report.counts["tried"] == CASES
    assert not report.bad, report.summary()
