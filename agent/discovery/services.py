"""A short service guess from the port number alone (IANA names and common use);
nothing is read from the service itself, so no banner ever reaches the facts."""

from __future__ import annotations

SERVICES: dict[int, str] = {
    21: "ftp", 22: "ssh", 23: "telnet", 25: "smtp", 53: "dns", 80: "http",
    110: "pop3", 111: "rpcbind", 135: "msrpc", 139: "netbios-ssn", 143: "imap",
    389: "ldap", 443: "https", 445: "microsoft-ds", 465: "smtps", 587: "submission",
    631: "ipp", 636: "ldaps", 993: "imaps", 995: "pop3s", 1433: "ms-sql",
    1521: "oracle", 2049: "nfs", 2375: "docker", 2376: "docker-tls", 3306: "mysql",
    3389: "rdp", 5432: "postgresql", 5900: "vnc", 5985: "winrm", 6379: "redis",
    8080: "http-alt", 8443: "https-alt", 9200: "elasticsearch", 11211: "memcached",
    27017: "mongodb",
}  # fmt: skip


def service_guess(port: int) -> str:
    return SERVICES.get(port, "unknown")
