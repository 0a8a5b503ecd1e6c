"""The connection cap's admission order (server/api/connections.Admission).

The connections here are small stand-ins with the two methods Admission calls (is it
waiting for a request head; close it), not mocks of uvicorn: the real protocol is
exercised on a real process in tests/e2e/test_flood_admission.py. These pin the
order the real flood cannot show one by one: oldest waiting connection first, a busy
one never, the health reserve, the refusal past it, the cap following the file limit.
"""

from __future__ import annotations

import resource

from server.api.connections import FD_RESERVE, HEALTH_RESERVE, Admission, Seat


class Conn:
    def __init__(self, name: str, *, busy: bool = False) -> None:
        self.name = name
        self.busy = busy
        self.evicted = False

    def header_idle(self) -> bool:
        return not self.busy

    def evict(self) -> None:
        self.evicted = True


def test_under_the_cap_every_connection_is_admitted() -> None:
    admission = Admission(3)
    conns = [Conn(str(i)) for i in range(3)]
    assert [admission.admit(c) for c in conns] == [Seat.REGULAR] * 3
    assert not any(c.evicted for c in conns)


def test_at_the_cap_the_oldest_connection_waiting_for_its_head_is_closed() -> None:
    admission = Admission(3)
    busy, old_idle, young_idle = Conn("busy", busy=True), Conn("old"), Conn("young")
    for conn in (busy, old_idle, young_idle):
        admission.admit(conn)
    newcomer = Conn("new")
    assert admission.admit(newcomer) is Seat.REGULAR
    assert old_idle.evicted
    assert not busy.evicted and not young_idle.evicted
    assert list(admission.open) == [busy, young_idle, newcomer]


def test_a_connection_that_became_idle_again_is_closable_too() -> None:
    admission = Admission(2)
    first, second = Conn("first", busy=True), Conn("second", busy=True)
    admission.admit(first)
    admission.admit(second)
    second.busy = False  # answered; waits for its next request head (keep-alive)
    assert admission.admit(Conn("new")) is Seat.REGULAR
    assert second.evicted and not first.evicted


def test_when_every_connection_is_busy_the_reserve_serves_health_then_refuses() -> None:
    admission = Admission(2)
    for i in range(2):
        admission.admit(Conn(f"busy{i}", busy=True))
    seats = [admission.admit(Conn(f"extra{i}", busy=True)) for i in range(HEALTH_RESERVE + 2)]
    assert seats == [Seat.HEALTH_ONLY] * HEALTH_RESERVE + [Seat.REFUSED] * 2
    assert len(admission.open) == 2 + HEALTH_RESERVE  # the refused are not held
    assert not any(c.evicted for c in admission.open)  # type: ignore[attr-defined]


def test_a_released_connection_frees_its_slot() -> None:
    admission = Admission(1)
    only = Conn("only", busy=True)
    admission.admit(only)
    admission.release(only)
    newcomer = Conn("new", busy=True)
    assert admission.admit(newcomer) is Seat.REGULAR
    assert not only.evicted


def test_the_cap_follows_the_file_limit_while_serving() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    admission = Admission(None)
    lowered = FD_RESERVE + 200
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        assert admission.cap() == 200
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert admission.cap() == min(1000, soft - FD_RESERVE)
