"""The facts document contract: its schema id, domains and the JSON Schema file.

The JSON Schema (`rules/schema/facts-v1.schema.json`) is the single definition of the
document. It lives in `rules` because every side reads it: the agent's tests, the
collector's validator and the rule linter (which checks that rule paths exist).
"""

from __future__ import annotations

import json
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_ID = "canhgac.facts/v1"


class Domain(StrEnum):
    """Top-level keys of a facts document, one per collector domain."""

    HOST = "host"
    PACKAGES = "packages"
    UPDATES = "updates"
    CERTIFICATES = "certificates"
    LISTENING = "listening"
    SERVICES = "services"
    SSH = "ssh"
    ACCOUNTS = "accounts"
    FIREWALL = "firewall"
    TIME = "time"
    MALWARE_PROTECTION = "malware_protection"
    LOGGING = "logging"
    SYSCTL = "sysctl"
    AUTH_POLICY = "auth_policy"
    AUDIT = "audit"
    FILE_PERMISSIONS = "file_permissions"
    CORE_DUMPS = "core_dumps"
    MOUNTS = "mounts"
    BRUTE_FORCE = "brute_force"
    DELETED_LIBRARIES = "deleted_libraries"
    PACKAGE_SOURCES = "package_sources"
    HOME_DIRECTORIES = "home_directories"
    LOG_FILES = "log_files"
    FILE_INTEGRITY = "file_integrity"
    DISCOVERY = "discovery"


ENVELOPE_KEYS = ("schema", "report_id", "agent_id", "seq", "collected_at", "agent_version")


@cache
def schema_text() -> str:
    return resources.files("rules").joinpath("schema/facts-v1.schema.json").read_text("utf-8")


def load_schema() -> dict[str, Any]:
    """A fresh parse of the JSON Schema.

    Fresh on every call because validators may rewrite what they are given
    (fastjsonschema replaces `$ref`s with absolute URIs in place).
    """
    schema: dict[str, Any] = json.loads(schema_text())
    return schema


@cache
def _derived_text() -> str:
    return resources.files("rules").joinpath("schema/derived-v1.schema.json").read_text("utf-8")


def load_rule_schema() -> dict[str, Any]:
    """What rules may read: the facts document plus the domains the collector derives
    at evaluation (`schema/derived-v1.schema.json`, never accepted from agents)."""
    schema = load_schema()
    derived: dict[str, Any] = json.loads(_derived_text())
    schema["properties"] = {**schema["properties"], **derived["properties"]}
    return schema
