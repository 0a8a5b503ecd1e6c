"""The explicit registry of collectors: one entry per facts domain that has one.

Adding a domain is one import and one line here; nothing is discovered by magic.
Order matters only for the order of keys in the document.
"""

from __future__ import annotations

from agent.collectors.base import CollectorFn
from agent.collectors.host import collect_host
from agent.collectors.listening import collect_listening
from rules.facts import Domain

COLLECTORS: dict[Domain, CollectorFn] = {
    Domain.HOST: collect_host,
    Domain.LISTENING: collect_listening,
}
