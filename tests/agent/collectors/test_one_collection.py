"""One socket table per collection: the listening and certificates domains of one
document read it once between them, and each new collection reads it again."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from agent.collectors.base import CollectContext, CollectorError, ErrorKind
from agent.collectors.system import InetSocket, OneCollection
from agent.document import collect_facts
from agent.state.identity import Identity
from rules.facts import Domain
from tests.agent.conftest import ROOTS
from tests.agent.fakes import FakeSystem, tcp
from tests.agent.recordings import debian12_runner


@dataclass
class CountingSystem(FakeSystem):
    socket_reads: list[int] = field(default_factory=list)

    def inet_sockets(self) -> list[InetSocket]:
        self.socket_reads.append(1)
        return super().inet_sockets()


def test_both_domains_share_one_socket_table_per_collection() -> None:
    system = CountingSystem(sockets=[tcp("127.0.0.1", 8443, pid=None)])
    ctx = CollectContext(root=ROOTS / "debian12", run=debian12_runner(), system=system)
    domains = [Domain.LISTENING, Domain.CERTIFICATES]
    first = collect_facts(ctx, Identity("t", 1), domains=domains)
    assert len(system.socket_reads) == 1
    assert [s["port"] for s in first["listening"]] == [8443]
    collect_facts(ctx, Identity("t", 2), domains=domains)
    assert len(system.socket_reads) == 2  # a new collection, a new reading


def test_a_refused_reading_is_the_same_answer_for_both() -> None:
    class Refusing(FakeSystem):
        calls = 0

        def inet_sockets(self) -> list[InetSocket]:
            Refusing.calls += 1
            raise CollectorError(ErrorKind.PERMISSION, "needs root")

    shared = OneCollection(Refusing())
    for _ in range(2):
        with pytest.raises(CollectorError, match="needs root"):
            shared.inet_sockets()
    assert Refusing.calls == 1
