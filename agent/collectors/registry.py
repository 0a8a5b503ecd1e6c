"""The explicit registry of collectors: one entry per facts domain that has one.

Adding a domain is one import and one line here; nothing is discovered by magic.
Order matters only for the order of keys in the document. `BUDGETS` bounds each
collector on its own (seconds) inside the document's overall budget: a hung package
manager costs the `updates` domain, not the report.
"""

from __future__ import annotations

from agent.collectors.accounts import collect_accounts
from agent.collectors.audit import collect_audit
from agent.collectors.authpolicy import collect_auth_policy
from agent.collectors.base import CollectorFn
from agent.collectors.bruteforce import collect_brute_force
from agent.collectors.certificates import collect_certificates
from agent.collectors.coredump import collect_core_dumps
from agent.collectors.deletedlibs import collect_deleted_libraries
from agent.collectors.fileintegrity import collect_file_integrity
from agent.collectors.fileperms import collect_file_permissions
from agent.collectors.firewall import collect_firewall
from agent.collectors.homedirs import collect_home_directories
from agent.collectors.host import collect_host
from agent.collectors.listening import collect_listening
from agent.collectors.logfiles import collect_log_files
from agent.collectors.logs import collect_logging
from agent.collectors.malware import collect_malware_protection
from agent.collectors.mounts import collect_mounts
from agent.collectors.packages import collect_packages
from agent.collectors.pkgsources import collect_package_sources
from agent.collectors.services import collect_services
from agent.collectors.ssh import collect_ssh
from agent.collectors.sysctl import collect_sysctl
from agent.collectors.timesync import collect_time
from agent.collectors.updates import collect_updates
from rules.facts import Domain

COLLECTORS: dict[Domain, CollectorFn] = {
    Domain.HOST: collect_host,
    Domain.PACKAGES: collect_packages,
    Domain.UPDATES: collect_updates,
    Domain.CERTIFICATES: collect_certificates,
    Domain.LISTENING: collect_listening,
    Domain.SERVICES: collect_services,
    Domain.SSH: collect_ssh,
    Domain.ACCOUNTS: collect_accounts,
    Domain.FIREWALL: collect_firewall,
    Domain.TIME: collect_time,
    Domain.MALWARE_PROTECTION: collect_malware_protection,
    Domain.LOGGING: collect_logging,
    Domain.SYSCTL: collect_sysctl,
    Domain.AUTH_POLICY: collect_auth_policy,
    Domain.AUDIT: collect_audit,
    Domain.FILE_PERMISSIONS: collect_file_permissions,
    Domain.CORE_DUMPS: collect_core_dumps,
    Domain.MOUNTS: collect_mounts,
    Domain.BRUTE_FORCE: collect_brute_force,
    Domain.DELETED_LIBRARIES: collect_deleted_libraries,
    Domain.PACKAGE_SOURCES: collect_package_sources,
    Domain.HOME_DIRECTORIES: collect_home_directories,
    Domain.LOG_FILES: collect_log_files,
    Domain.FILE_INTEGRITY: collect_file_integrity,
}

DEFAULT_BUDGET = 30.0
BUDGETS: dict[Domain, float] = {
    Domain.UPDATES: 60.0,  # apt/dnf read large package lists
    Domain.PACKAGES: 45.0,
    Domain.CERTIFICATES: 45.0,  # bounded handshakes to every listener
}


def budget_of(domain: Domain) -> float:
    return BUDGETS.get(domain, DEFAULT_BUDGET)
