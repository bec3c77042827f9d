"""A short run of the argument fuzzer (issue 3, item 6); the full run is
``python tests/fuzz_api_args.py --count 10000 --seed 0``."""

from __future__ import annotations

import fuzz_api_args as fuzz
import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny tensors: with several threads, start-up costs more than the work."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("seed", [0, 1])
def test_fuzz_finds_no_crash_and_no_bad_output(seed):
    report = fuzz.run_fuzz(250, seed)
    assert report.count == 250
    assert report.crashes == 0, report.examples
    assert report.bad_outputs == 0, report.examples
    assert report.accepted + report.rejected == report.count
    assert report.core_runs == report.accepted
    # The generator must exercise both outcomes and every kind of rejection.
    assert report.accepted > 50 and report.rejected > 50 and report.clamped > 10
    assert set(report.rejection_kinds) >= {"NaN or infinite", "not a number", "unknown name", "bad boolean",
                                           "not a list"}


def test_fuzz_counts_crashes(monkeypatch):
    """A parser that raises anything but SettingsError is counted as a crash, not a rejection."""
    def fragile(args):
        raise TypeError("boom")

    monkeypatch.setattr(fuzz, "parse_script_args", fragile)
    report = fuzz.run_fuzz(20, 3)
    assert report.crashes == 20 and report.rejected == 0 and not report.ok


def test_fuzz_counts_non_finite_outputs(monkeypatch):
    """A blend that returns NaN is caught by the output checks."""
    monkeypatch.setattr(fuzz, "latent_blend", lambda s, a, b, t: torch.full_like(b, float("nan")))
    report = fuzz.run_fuzz(60, 4)
    assert report.accepted > 0 and report.bad_outputs >= report.accepted and not report.ok


def test_command_line_prints_the_counts(capsys, one_thread):
    assert fuzz.main(["--count", "40", "--seed", "5"]) == 0
    printed = capsys.readouterr().out
    for label in ("vectors: 40", "rejected (SettingsError):", "accepted:", "crashes: 0",
                  "non-finite or malformed outputs: 0"):
        assert label in printed
