"""Benchmark: the vulnerability feed store and matching (server/vulns).

The real Debian tracker file cannot be fetched here (no internet), so the feed is
SYNTHETIC at the real file's scale: 5,000 source packages (the ~900 of this
machine's recorded facts among them, tests/data/server/vulns/facts.debian12.json),
150,000 (package, CVE) entries, each stated for 5 releases (bullseye, bookworm,
trixie, forky, sid): ~750,000 release entries, ~110 MB of JSON, in the tracker's
exact shape; per release 85 % fixed before the installed version, 3 % fixed in the
archive after it, 7 % open (no DSA), 5 % never affected. Figures, each beside a
baseline measured in the same run:
- import (parse, validate, build the SQLite store, swap) vs `json.loads` of the file;
- store size vs the JSON file's size;
- matching one host with 1,500 packages (the recorded host's packages, grown with
  renamed copies) vs a plain dict lookup of the same 1,500 source names: the first
  host of a release (the release's advisories read from the store, every version
  compared) and the next ones (comparisons of a (source, version) reused);
- re-matching 10,000 hosts (in process, no database: the evaluation's share of a
  re-evaluation after an import) vs the same dict lookups for 10,000 hosts: the same
  host 10,000 times (the best case), and hosts that DIFFER as a province's do: 10
  package-set variants (each with 60 versions of its own and 20 packages fewer),
  each host with 3 more packages at a version of its own choice among 3 local
  builds (each host made just before it is matched, as a re-evaluation loads
  hosts in batches); and the 10 variants' hosts matched under the digest of their package list
  (as the audit does with the stored blob), without per-host changes.
"""

from __future__ import annotations

import copy
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from figures import record

from server.vulns.feeds.detect import read_feed
from server.vulns.matching import VulnMatcher
from server.vulns.store import build_store

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "server" / "vulns"
RELEASES = ("bullseye", "bookworm", "trixie", "forky", "sid")
PACKAGES = 5_000
ENTRIES = 150_000
HOST_PACKAGES = 1_500
HOSTS = 10_000
VARIANTS = 10
VARIANT_CHANGES = 60  # versions a variant has of its own
VARIANT_DROPS = 20  # packages a variant does not have
HOST_CHANGES = 3  # versions a host has of its own (among LOCAL_BUILDS)
LOCAL_BUILDS = 3
TODAY = date(2026, 11, 30)


def recorded() -> dict[str, Any]:
    facts: dict[str, Any] = json.loads((DATA / "facts.debian12.json").read_text("utf-8"))
    return facts


def host_facts(base: dict[str, Any]) -> dict[str, Any]:
    facts = copy.deepcopy(base)
    items = facts["packages"]["items"]
    real = list(items)
    index = 0
    while len(items) < HOST_PACKAGES:
        copy_of = dict(real[index % len(real)])
        copy_of["name"] = f"{copy_of['name']}-extra{index}"
        copy_of["source"] = f"synthetic-{index % (PACKAGES - 1000)}"
        items.append(copy_of)
        index += 1
    facts["packages"]["count"] = len(items)
    return facts


def synthetic_tracker(host: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    versions = {
        p["source"] or p["name"]: p.get("source_version") or p["version"]
        for p in host["packages"]["items"]
    }
    names = sorted(versions)
    names += [f"synthetic-{i}" for i in range(PACKAGES - len(names))]
    tracker: dict[str, Any] = {name: {} for name in names}
    for number in range(ENTRIES):
        name = names[number % len(names)]
        installed = versions.get(name, "1.0-1")
        releases = {}
        for release in RELEASES:
            roll = rng.random()
            if roll < 0.85:  # fixed long ago: not affected (most of a release's entries)
                releases[release] = {"status": "resolved", "repositories": {release: installed},
                                     "fixed_version": "0.1-1", "urgency": "low"}  # fmt: skip
            elif roll < 0.88:  # fixed in the archive, newer than installed
                fixed = installed + "+fix1"
                releases[release] = {"status": "resolved",
                                     "repositories": {release: installed,
                                                      f"{release}-security": fixed},
                                     "fixed_version": fixed, "urgency": "high"}  # fmt: skip
            elif roll < 0.95:
                releases[release] = {"status": "open", "repositories": {release: installed},
                                     "urgency": "unimportant", "nodsa": "Minor issue",
                                     "nodsa_reason": "postponed"}  # fmt: skip
            else:  # never affected
                releases[release] = {"status": "resolved", "repositories": {release: installed},
                                     "fixed_version": "0", "urgency": "low"}  # fmt: skip
        tracker[name][f"CVE-{2000 + number // 10000}-{number % 10000 + 10000}"] = {
            "description": "synthetic entry of realistic shape", "scope": "remote",
            "releases": releases,
        }  # fmt: skip
    return tracker


def variants(base: dict[str, Any], rng: random.Random) -> list[list[dict[str, Any]]]:
    """VARIANTS package lists: the base one, each with versions and packages of its own."""
    made = []
    for number in range(VARIANTS):
        items = [dict(p) for p in base["packages"]["items"]]
        for index in rng.sample(range(len(items)), VARIANT_CHANGES):
            item = items[index]
            item["version"] = f"{item['version']}+v{number}"
            if item.get("source_version"):
                item["source_version"] = f"{item['source_version']}+v{number}"
        dropped = set(rng.sample(range(len(items)), VARIANT_DROPS))
        made.append([p for n, p in enumerate(items) if n not in dropped])
    return made


def varied_host(
    base: dict[str, Any], variant: list[dict[str, Any]], rng: random.Random
) -> dict[str, Any]:
    """A host of `variant` with HOST_CHANGES versions of its own (shallow: shares items)."""
    items = list(variant)
    for index in rng.sample(range(len(items)), HOST_CHANGES):
        item = dict(items[index])
        build = rng.randrange(LOCAL_BUILDS)
        item["version"] = f"{item['version']}+local{build}"
        if item.get("source_version"):
            item["source_version"] = f"{item['source_version']}+local{build}"
        items[index] = item
    return {**base, "packages": {**base["packages"], "items": items, "count": len(items)}}


def timed(work: Any, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    rng = random.Random(16)
    host = host_facts(recorded())
    with tempfile.TemporaryDirectory() as scratch:
        feed = Path(scratch) / "debian-tracker.json"
        feed.write_text(json.dumps(synthetic_tracker(host, rng)), "utf-8")
        json_bytes = feed.stat().st_size
        parse = timed(lambda: json.loads(feed.read_bytes()), 1)
        store = Path(scratch) / "vulndb.sqlite"
        now = datetime(2026, 11, 29, tzinfo=UTC)

        def do_import() -> None:
            store.unlink(missing_ok=True)
            build_store(store, [read_feed(feed, now)], now)

        imported = timed(do_import, 1)
        record("import of a full-size Debian tracker file (synthetic)", imported, "s",
               baseline=parse, baseline_name="json.loads of the file")  # fmt: skip
        record("feed store size", store.stat().st_size / 1e6, "MB",
               baseline=json_bytes / 1e6, baseline_name="the JSON file")  # fmt: skip

        matcher = VulnMatcher(store, max_age_days=7)
        started = time.perf_counter()
        domain, problem = matcher.match(host, TODAY)  # loads bookworm, compares versions
        first = time.perf_counter() - started
        assert domain is not None and problem is None, problem
        sources = [p["source"] or p["name"] for p in host["packages"]["items"]]
        by_source = matcher.advisories("debian", "bookworm")  # the baseline's dict

        def lookups() -> int:
            return sum(len(by_source.get(source, ())) for source in sources)

        per_host = timed(lambda: matcher.match(host, TODAY), 30)
        plain = timed(lookups, 30)
        record("first host of a release (store read, every version compared)", first * 1000,
               "ms", baseline=plain * 1000, baseline_name="dict lookup")  # fmt: skip
        record(f"matching one host, {HOST_PACKAGES} packages ({domain['count']} items)",
               per_host * 1000, "ms", baseline=plain * 1000,
               baseline_name="dict lookup of the same source names")  # fmt: skip
        started = time.perf_counter()
        for _ in range(HOSTS):
            matcher.match(host, TODAY)
        fleet = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(HOSTS):
            lookups()
        fleet_plain = time.perf_counter() - started
        record(f"re-matching {HOSTS:,} identical hosts after an import (in process)",
               fleet, "s", baseline=fleet_plain,
               baseline_name="dict lookups for the same hosts")  # fmt: skip
        remix(store, host, rng)
        matcher.close()


def remix(store: Path, host: dict[str, Any], rng: random.Random) -> None:
    """Re-matching hosts that differ, each with a fresh matcher (an import's)."""
    sets = variants(host, rng)
    matcher = VulnMatcher(store, max_age_days=7)
    by_source = matcher.advisories("debian", "bookworm")  # the baseline's dict
    matcher.close()
    matcher = VulnMatcher(store, max_age_days=7)
    fleet = fleet_plain = 0.0
    # each host made just before it is matched, not all 10,000 held at once (as a
    # re-evaluation loads them in batches): only the matching and the lookups timed
    for n in range(HOSTS):
        facts = varied_host(host, sets[n % VARIANTS], random.Random(n))
        started = time.perf_counter()
        matcher.match(facts, TODAY)
        fleet += time.perf_counter() - started
        started = time.perf_counter()
        sum(len(by_source.get(p["source"] or p["name"], ())) for p in facts["packages"]["items"])
        fleet_plain += time.perf_counter() - started
    record(f"re-matching {HOSTS:,} differing hosts ({VARIANTS} package sets, {HOST_CHANGES}"
           " versions of their own each)", fleet, "s", baseline=fleet_plain,
           baseline_name="dict lookups for the same hosts")  # fmt: skip
    matcher.close()
    matcher = VulnMatcher(store, max_age_days=7)
    started = time.perf_counter()
    for n in range(HOSTS):
        variant = n % VARIANTS
        facts = {**host, "packages": {**host["packages"], "items": sets[variant]}}
        matcher.match(facts, TODAY, packages_key=variant)
    keyed = time.perf_counter() - started
    started = time.perf_counter()
    for n in range(HOSTS):
        sum(len(by_source.get(p["source"] or p["name"], ())) for p in sets[n % VARIANTS])
    keyed_plain = time.perf_counter() - started
    record(f"re-matching {HOSTS:,} hosts of {VARIANTS} package sets, by their digest", keyed,
           "s", baseline=keyed_plain, baseline_name="dict lookups for the same hosts")  # fmt: skip
    matcher.close()


if __name__ == "__main__":
    main()
