"""carried.json: the updates cache and the watchdog's skips kept between processes, on
real files in a temporary state directory; clocks are injected numbers (the ages
across a save and a load are what is tested)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.collectors.platforms.cache import OutputCache, SavedOutput
from agent.document import Watchdog, keep_carried, restore_carried
from agent.errors import StateError
from agent.state.carry import (
    CARRY_FILE,
    MAX_FILE_BYTES,
    MAX_OUTPUTS,
    MAX_STDOUT_CHARS,
    Carried,
    SavedSkip,
    load_carried,
    save_carried,
)
from rules.facts import Domain

DIGEST = "ab" * 32


def _output(n: int, age: float = 10.0, stdout: str = "Listing...\n") -> SavedOutput:
    return SavedOutput(("/", "apt", "list", str(n)), DIGEST, stdout, age)


def test_round_trip_ages_by_the_time_between_save_and_load(tmp_path: Path) -> None:
    carried = Carried((_output(1),), (SavedSkip("updates", 600.0, "used 9.0 CPU-s"),))
    save_carried(tmp_path, carried, wall=lambda: 1000.0)
    loaded = load_carried(tmp_path, wall=lambda: 1100.0)
    assert loaded.outputs == (_output(1, age=110.0),)
    assert loaded.skips == (SavedSkip("updates", 500.0, "used 9.0 CPU-s"),)
    assert not list(tmp_path.glob(".carried.*"))  # the temporary file was renamed


def test_no_file_is_nothing_carried(tmp_path: Path) -> None:
    assert load_carried(tmp_path / "new") == Carried()


def test_a_save_dated_in_the_future_carries_nothing(tmp_path: Path) -> None:
    save_carried(tmp_path, Carried((_output(1),)), wall=lambda: 5000.0)
    assert load_carried(tmp_path, wall=lambda: 4000.0) == Carried()


def test_saving_is_bounded(tmp_path: Path) -> None:
    outputs = tuple(_output(n) for n in range(MAX_OUTPUTS + 3))
    huge = _output(99, stdout="x" * (MAX_STDOUT_CHARS + 1))
    save_carried(tmp_path, Carried((huge, *outputs)))
    loaded = load_carried(tmp_path)
    assert len(loaded.outputs) == MAX_OUTPUTS
    assert all(o.key[-1] != "99" for o in loaded.outputs)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "is not valid JSON"),
        ("[]", "not a version 1 object"),
        ('{"version": 1, "saved_at": 1, "outputs": {}, "skips": []}', "are required"),
        (
            '{"version": 1, "saved_at": 1, "skips": [], "outputs": [{"key": [], '
            '"digest": "x", "stdout": "", "age": 1}]}',
            "an output needs key, digest, stdout",
        ),
        (
            '{"version": 1, "saved_at": 1, "outputs": [], "skips": [{"domain": "updates",'
            ' "reason": "r", "left": true}]}',
            "a skip needs domain, reason and seconds left",
        ),
    ],
)
def test_a_corrupt_file_is_an_error_with_its_reason(tmp_path: Path, text: str, reason: str) -> None:
    (tmp_path / CARRY_FILE).write_text(text)
    with pytest.raises(StateError, match=reason):
        load_carried(tmp_path)


def test_an_oversized_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    (tmp_path / CARRY_FILE).write_bytes(b" " * (MAX_FILE_BYTES + 1))
    with pytest.raises(StateError, match="larger than"):
        load_carried(tmp_path)


def test_restore_and_keep_hand_cache_and_skips_to_the_next_process(tmp_path: Path) -> None:
    clock = [100.0]
    cache = OutputCache(clock=lambda: clock[0])
    watchdog = Watchdog(clock=lambda: clock[0], skip_seconds=3600)
    watchdog.stop(Domain.UPDATES, "used 9.0 CPU-s, over its budget of 5")
    cache.restore([_output(1, age=5.0)])
    assert keep_carried(tmp_path, watchdog, cache) is None

    # The next process: its own clocks, nothing in memory.
    later = [7.0]
    next_cache = OutputCache(clock=lambda: later[0])
    next_watchdog = Watchdog(clock=lambda: later[0], skip_seconds=3600)
    assert restore_carried(tmp_path, next_watchdog, next_cache) is None
    assert [o.key for o in next_cache.saved()] == [_output(1).key]
    why = next_watchdog.skipped(Domain.UPDATES)
    assert why is not None and "used 9.0 CPU-s" in why
    assert next_watchdog.skipped(Domain.PACKAGES) is None
    later[0] += 3600.0  # the skip's hour is over
    assert next_watchdog.skipped(Domain.UPDATES) is None


def test_restore_never_skips_longer_than_the_watchdog_would(tmp_path: Path) -> None:
    skips = (SavedSkip("updates", 10 * 86400.0, "x"), SavedSkip("no-such-domain", 60.0, "y"))
    save_carried(tmp_path, Carried((), skips))
    clock = [0.0]
    watchdog = Watchdog(clock=lambda: clock[0], skip_seconds=3600)
    assert restore_carried(tmp_path, watchdog, OutputCache()) is None
    clock[0] = 3599.0
    assert watchdog.skipped(Domain.UPDATES) is not None
    clock[0] = 3601.0
    assert watchdog.skipped(Domain.UPDATES) is None
    assert [s.domain for s in watchdog.saved()] == []


def test_a_corrupt_file_is_reported_then_replaced(tmp_path: Path) -> None:
    (tmp_path / CARRY_FILE).write_text('{"version": 1')
    error = restore_carried(tmp_path, Watchdog(), OutputCache())
    assert isinstance(error, StateError) and "not valid JSON" in str(error)
    assert keep_carried(tmp_path, Watchdog(), OutputCache()) is None
    assert json.loads((tmp_path / CARRY_FILE).read_text())["outputs"] == []
