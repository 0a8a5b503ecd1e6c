"""Parted domains (`server.storage.fact_parts`) on real agent documents: the parts
join back to exactly the list, in its order, and one changed package changes one
part."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from server.storage.fact_parts import (
    PART_FROM,
    PART_MAX,
    PARTED,
    canonical,
    join_parts,
    split_parts,
)

DATA = Path(__file__).resolve().parents[2] / "data"
DOCUMENTS = (
    DATA / "rules" / "engine_golden" / "machine.json",  # a real Debian 12 machine
    DATA / "server" / "vulns" / "facts.debian12.json",
)


def packages_of(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(path.read_text())["packages"]
    return value


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_parts_join_back_to_the_real_list(path: Path) -> None:
    packages = packages_of(path)
    parted = split_parts("packages", packages)
    assert parted is not None
    assert 10 < len(parted.parts) < len(packages["items"]) // 8  # parted, and not into crumbs
    joined = join_parts(
        "packages", json.loads(parted.head), [json.loads(p.text) for p in parted.parts]
    )
    assert joined == packages
    assert canonical(joined) == canonical(packages)  # the same order, byte for byte


def test_one_changed_version_changes_one_part() -> None:
    packages = packages_of(DOCUMENTS[0])
    before = split_parts("packages", packages)
    changed = copy.deepcopy(packages)
    changed["items"][len(changed["items"]) // 2]["version"] += "+deb12u9"
    after = split_parts("packages", changed)
    assert before is not None and after is not None
    assert before.head == after.head
    differ = [a != b for a, b in zip(before.parts, after.parts, strict=True)]
    assert differ.count(True) == 1


def test_an_added_package_changes_at_most_two_parts() -> None:
    packages = packages_of(DOCUMENTS[0])
    changed = copy.deepcopy(packages)
    changed["items"].insert(100, {**changed["items"][100], "name": "added-package"})
    before = {p.digest for p in split_parts("packages", packages).parts}  # type: ignore[union-attr]
    after = [p.digest for p in split_parts("packages", changed).parts]  # type: ignore[union-attr]
    assert 1 <= sum(digest not in before for digest in after) <= 2


def test_a_list_without_boundaries_is_cut_at_the_maximum() -> None:
    items = [{"name": "same", "version": str(i)} for i in range(PART_MAX * 2 + 1)]
    parted = split_parts("packages", {"items": items})
    assert parted is not None
    assert [len(json.loads(p.text)) for p in parted.parts] in (
        [PART_MAX, PART_MAX, 1],
        [1] * len(items),  # "same" happens to be a boundary: every item ends a part
    )


@pytest.mark.parametrize(
    ("domain", "value"),
    [
        ("host", {"items": [{"name": "x"}] * 100}),  # not a parted domain
        ("listening", [{"port": 22}] * (PART_FROM - 1)),  # too short to pay
        ("packages", {"items": [{"name": "bash"}] * (PART_FROM - 1)}),
        ("packages", [{"name": "bash"}] * 100),  # not the shape PARTED names
        ("packages", {"manager": "dpkg", "items": None}),
        ("packages", None),
    ],
)
def test_other_shapes_are_stored_whole(domain: str, value: Any) -> None:
    assert split_parts(domain, value) is None


def test_lists_at_the_top_and_updates_join_back() -> None:
    listening = [{"port": 1000 + i, "protocol": "tcp", "address": "0.0.0.0"} for i in range(200)]
    parted = split_parts("listening", listening)
    assert parted is not None and parted.head == "[]" and len(parted.parts) > 1
    parts = [json.loads(p.text) for p in parted.parts]
    assert join_parts("listening", json.loads(parted.head), parts) == listening
    updates = json.loads(DOCUMENTS[0].read_text())["updates"]  # a real pending list
    assert len(updates["pending"]) >= PART_FROM
    parted = split_parts("updates", updates)
    assert parted is not None
    parts = [json.loads(p.text) for p in parted.parts]
    assert join_parts("updates", json.loads(parted.head), parts) == updates


def test_the_downgrade_of_0007_knows_every_parted_domain() -> None:
    path = (
        Path(__file__).resolve().parents[3]
        / "server/storage/migrations/versions/0007_parted_domains.py"
    )
    spec = importlib.util.spec_from_file_location("migration_0007", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module._PARTED == PARTED
