"""The issue 13 families added last: mounts, brute-force protection, processes on
deleted libraries, package sources. Parsers on files recorded on the Debian 12
development machine (tests/data/agent README), collectors against this machine's
real /proc, findmnt and a process really mapping a deleted library."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from agent.collectors.base import CollectContext, ErrorKind
from agent.collectors.bruteforce import (
    FAIL2BAN_STATUS,
    collect_brute_force,
    parse_jails,
    parse_status,
)
from agent.collectors.deletedlibs import collect_deleted_libraries, deleted_libraries
from agent.collectors.mounts import collect_mounts, parse_mounts
from agent.collectors.pkgsources import (
    collect_package_sources,
    parse_deb822,
    parse_one_line,
    parse_repo,
)
from tests.agent.conftest import DATA
from tests.agent.fakes import RecordedRunner
from tests.agent.privileges import as_unprivileged
from tests.agent.recordings import recorded, result
from tests.support import require, require_root, require_tool

ROOTS = DATA / "roots"


def test_recorded_mounts() -> None:
    found = parse_mounts(recorded("proc-self-mounts.debian12.txt"))
    assert [m["target"] for m in found] == ["/", "/dev/shm"]
    shm = found[1]
    assert (shm["fstype"], "noexec" in shm["options"]) == ("tmpfs", False)


def test_hardened_mounts_escapes_and_overmounts() -> None:
    text = (
        "tmpfs /tmp tmpfs rw,relatime 0 0\n"
        "tmpfs /tmp tmpfs rw,nosuid,nodev,noexec,relatime 0 0\n"  # hides the first
        "/dev/sda3 /var/tmp ext4 rw,nosuid,nodev 0 0\n"
        "/dev/sda4 /srv/with\\040space ext4 rw 0 0\n"
    )
    found = parse_mounts(text)
    assert found[0] == {
        "target": "/tmp",
        "source": "tmpfs",
        "fstype": "tmpfs",
        "options": ["nodev", "noexec", "nosuid", "relatime", "rw"],
    }
    assert [m["target"] for m in found] == ["/tmp", "/var/tmp"]


def test_mounts_match_findmnt_here() -> None:
    require_tool("findmnt")
    mine = {m["target"]: m for m in collect_mounts(CollectContext()).data["filesystems"]}
    out = subprocess.run(
        ["findmnt", "-J", "-o", "TARGET,FSTYPE,OPTIONS"], capture_output=True, text=True, check=True
    ).stdout
    listed: dict[str, dict[str, str]] = {}

    def walk(nodes: list[dict[str, object]]) -> None:
        for node in nodes:
            listed[str(node["target"])] = {k: str(v) for k, v in node.items() if k != "children"}
            walk(node.get("children", []))  # type: ignore[arg-type]

    walk(json.loads(out)["filesystems"])
    assert mine and set(mine) <= set(listed)
    for target, mount in mine.items():
        assert mount["fstype"] == listed[target]["fstype"]
        assert mount["options"] == sorted(set(listed[target]["options"].split(",")))


def test_fail2ban_debian12_configuration() -> None:
    ctx = CollectContext(root=ROOTS / "fail2ban-debian12")  # no /proc: running unknown
    collected = collect_brute_force(ctx)
    assert collected.data == {
        "fail2ban_installed": True,
        "fail2ban_running": None,
        "fail2ban_jails": ["sshd"],  # jail.d/defaults-debian.conf
        "fail2ban_active_jails": None,  # running unknown: the server is not asked
        "sshguard_running": None,
    }
    assert [i.kind for i in collected.issues] == [ErrorKind.FAILED]


def test_jail_overrides() -> None:
    default, jails = parse_jails("[DEFAULT]\nenabled = true\n[sshd]\n[recidive]\nenabled=false\n")
    assert (default, jails) == (True, {"sshd": True, "recidive": False})
    assert parse_jails("[sshd]\nport = ssh\n") == (False, {"sshd": False})


def _fail2ban_root(tmp_path: Path, process: str = "fail2ban-server") -> Path:
    shutil.copytree(ROOTS / "fail2ban-debian12", tmp_path, dirs_exist_ok=True)
    (tmp_path / "proc/7").mkdir(parents=True)
    (tmp_path / "proc/7/comm").write_text(f"{process}\n")
    return tmp_path


def _status(stdout: str, code: int = 0, stderr: str = "") -> RecordedRunner:
    return RecordedRunner(dict([result(FAIL2BAN_STATUS, stdout, code, stderr)]))


def test_fail2ban_running_and_absent(tmp_path: Path) -> None:
    (tmp_path / "proc/7").mkdir(parents=True)
    (tmp_path / "proc/7/comm").write_text("fail2ban-server\n")
    runner = _status(recorded("fail2ban-client-status.debian12.txt"))
    data = collect_brute_force(CollectContext(root=tmp_path, run=runner)).data
    assert (data["fail2ban_installed"], data["fail2ban_running"]) == (False, True)
    assert (data["fail2ban_jails"], data["sshguard_running"]) == ([], False)


def test_fail2ban_live_jails_from_recorded_status(tmp_path: Path) -> None:
    """`fail2ban-client status` of fail2ban 1.0.2 (Debian 12), recorded from a private
    server (tests/data/agent README): the jails really active, not the configured."""
    root = _fail2ban_root(tmp_path)
    runner = _status(recorded("fail2ban-client-status.debian12.txt"))
    collected = collect_brute_force(CollectContext(root=root, run=runner))
    assert collected.issues == ()
    assert collected.data["fail2ban_active_jails"] == ["sshd"]
    assert runner.calls == [tuple(FAIL2BAN_STATUS)]
    two = _status(recorded("fail2ban-client-status.two-jails.debian12.txt"))
    data = collect_brute_force(CollectContext(root=root, run=two)).data
    assert data["fail2ban_active_jails"] == ["recidive", "sshd"]
    assert data["fail2ban_jails"] == ["sshd"]  # configured here: only jail.d's sshd


def test_fail2ban_that_cannot_be_asked_is_unknown_with_its_reason(tmp_path: Path) -> None:
    root = _fail2ban_root(tmp_path)
    # Recorded: the client when the server's socket is not there (exit 255).
    down = recorded("fail2ban-client-status.not-running.debian12.stderr.txt")
    collected = collect_brute_force(CollectContext(root=root, run=_status("", 255, down)))
    assert collected.data["fail2ban_active_jails"] is None
    [issue] = collected.issues
    assert issue.kind is ErrorKind.FAILED
    assert "fail2ban-client status exited with 255" in issue.reason
    assert "Is fail2ban running?" in issue.reason
    # Not root: the socket is root's (the client's own words), a permission problem.
    denied = "Permission denied to socket: /var/run/fail2ban/fail2ban.sock, (you must be root)"
    collected = collect_brute_force(CollectContext(root=root, run=_status("", 255, denied)))
    assert [i.kind for i in collected.issues] == [ErrorKind.PERMISSION]
    # The client missing while the server runs, and an answer without a jail list.
    missing = collect_brute_force(CollectContext(root=root, run=RecordedRunner()))
    assert missing.data["fail2ban_active_jails"] is None
    assert [i.kind for i in missing.issues] == [ErrorKind.UNSUPPORTED]
    odd = collect_brute_force(CollectContext(root=root, run=_status("Status\n")))
    assert odd.data["fail2ban_active_jails"] is None
    assert "no 'Jail list:' line" in odd.issues[0].reason


def test_fail2ban_not_running_is_not_asked(tmp_path: Path) -> None:
    root = _fail2ban_root(tmp_path, process="sshd")
    runner = RecordedRunner()
    data = collect_brute_force(CollectContext(root=root, run=runner)).data
    assert (data["fail2ban_running"], data["fail2ban_active_jails"]) == (False, [])
    assert runner.calls == []


def test_status_parser_edges() -> None:
    assert parse_status("Status\n|- Number of jail:\t0\n`- Jail list:\t\n") == []
    assert parse_status("`- Jail list:\tsshd,  nginx-http-auth , sshd\n") == [
        "nginx-http-auth",
        "sshd",
    ]
    assert parse_status("") is None


def test_fail2ban_status_of_the_real_client(tmp_path: Path) -> None:
    """A private fail2ban server (its own configuration, socket and log in tmp_path;
    the `dummy` ban action, so no firewall is touched and no traffic leaves): the
    real client's answer parses to the jails it really runs: a jail stopped at run
    time is still in the configuration but no longer active."""
    client = require_tool("fail2ban-client")
    require(Path("/etc/fail2ban/filter.d/sshd.conf").is_file(), "fail2ban's filters absent")
    conf = tmp_path / "conf"
    shutil.copytree("/etc/fail2ban", conf)
    for extra in conf.glob("jail.d/*"):
        extra.unlink()
    (tmp_path / "auth.log").write_text("")
    (tmp_path / "fail2ban.log").write_text("")  # recidive's log: it must exist to start
    (conf / "fail2ban.local").write_text(
        "[Definition]\n"
        f"logtarget = {tmp_path}/fail2ban.log\n"
        f"socket = {tmp_path}/fail2ban.sock\n"
        f"pidfile = {tmp_path}/fail2ban.pid\n"
        "dbfile = :memory:\n"
    )
    (conf / "jail.local").write_text(
        "[DEFAULT]\nbackend = polling\nbanaction = dummy\nbanaction_allports = dummy\n"
        f"[sshd]\nenabled = true\nlogpath = {tmp_path}/auth.log\n"
        f"[recidive]\nenabled = true\nlogpath = {tmp_path}/fail2ban.log\n"
    )
    base = [client, "-c", str(conf)]

    def run(*args: str) -> str:
        done = subprocess.run(
            [*base, *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout

    pidfile = tmp_path / "fail2ban.pid"
    try:
        run("start")
        assert parse_status(run("status")) == ["recidive", "sshd"]
        run("stop", "recidive")
        assert parse_status(run("status")) == ["sshd"]
    finally:
        pid = pidfile.read_text().strip() if pidfile.is_file() else ""
        subprocess.run([*base, "stop"], capture_output=True, timeout=60, check=False)
        # `stop` returns before the server has exited: wait for it, or a collection
        # run next (tests/agent/test_document.py) sees a fail2ban-server without the
        # system socket and rightly reports that it cannot ask it.
        deadline = time.monotonic() + 30
        while pid.isdigit() and Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not (pid.isdigit() and Path(f"/proc/{pid}").exists()), "fail2ban-server lingers"


def test_deleted_library_lines() -> None:
    maps = (
        "7f1c0000-7f1c2000 r-xp 00000000 fe:01 131 /usr/lib/x86_64-linux-gnu/libssl.so.3 (deleted)\n"
        "7f1c2000-7f1c3000 r--p 00002000 fe:01 131 /usr/lib/x86_64-linux-gnu/libssl.so.3 (deleted)\n"
        "7f1d0000-7f1d1000 rw-s 00000000 00:01 9 /memfd:pulseaudio (deleted)\n"
        "7f1e0000-7f1e1000 rw-s 00000000 00:05 3 /SYSV00000000 (deleted)\n"
        "7f1f0000-7f1f1000 r--p 00000000 fe:01 44 /usr/lib/locale/C.utf8/LC_CTYPE (deleted)\n"
        "7f200000-7f201000 r-xp 00000000 fe:01 45 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
    )
    assert deleted_libraries(maps) == ["/usr/lib/x86_64-linux-gnu/libssl.so.3"]


def test_a_process_really_mapping_a_deleted_library(tmp_path: Path) -> None:
    require_root()  # other processes' maps; unprivileged the answer is unknown
    libz = next(p for p in Path("/usr/lib").rglob("libz.so.1*") if p.is_file())
    copy = tmp_path / "libcanhgactest.so.1"
    shutil.copy(libz, copy)
    code = (
        f"import ctypes,sys; ctypes.CDLL({str(copy)!r}); print('up', flush=True); sys.stdin.read()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "up\n"
        copy.unlink()
        collected = collect_deleted_libraries(CollectContext())
        if collected.data["processes"] is None:  # a process here root cannot read (pid 1)
            assert [i.kind for i in collected.issues] == [ErrorKind.PERMISSION]
            # Already root: the reason must not tell the administrator to run as root.
            assert collected.issues[0].reason.endswith("refused even to root (ptrace access check)")
            lines = (Path(f"/proc/{child.pid}/maps")).read_text()
            assert deleted_libraries(lines) == [str(copy)]
        else:
            mine = [p for p in collected.data["processes"] if p["pid"] == child.pid]
            assert mine == [{"pid": child.pid, "process": "python3", "libraries": [str(copy)]}]
    finally:
        child.kill()
        child.wait(5)


def test_unprivileged_the_answer_is_unknown_not_clean() -> None:
    # As `nobody` on this machine's real /proc: root's processes' maps are unreadable.
    def run() -> list[object]:
        collected = collect_deleted_libraries(CollectContext())
        return [collected.data, [(i.kind.value, i.reason) for i in collected.issues]]

    data, issues = as_unprivileged(run)
    assert data == {"complete": False, "processes": None}
    assert [kind for kind, _ in issues] == ["permission"]
    assert issues[0][1].endswith("; run as root")


def test_apt_sources_debian12() -> None:
    data = collect_package_sources(CollectContext(root=ROOTS / "apt-debian12")).data
    assert [
        (s["file"].rsplit("/", 1)[-1], s["uri"], s["signed_by"], s["verified"])
        for s in data["sources"]
    ] == [
        ("debian.sources", "http://deb.debian.org/debian", True, True),
        ("debian.sources", "http://deb.debian.org/debian-security", True, True),
        ("google-cloud-sdk.list", "https://packages.cloud.google.com/apt", False, True),
    ]


def test_apt_options_and_disabled_stanzas() -> None:
    assert (
        parse_one_line("deb [trusted=yes arch=amd64] http://repo.local/x ./\n")[0]["verified"]
        is False
    )
    assert (
        parse_one_line("deb [signed-by=/k.gpg] http://repo.local/x ./ # c\n")[0]["signed_by"]
        is True
    )
    assert parse_deb822("Types: deb\nURIs: http://a/\nSuites: x\nEnabled: no\n") == []
    assert (
        parse_deb822("Types: deb\nURIs: http://a/ https://b/\nSuites: x\n")[1]["scheme"] == "https"
    )


def test_dnf_repositories() -> None:
    text = (
        "[baseos]\nname=Rocky Linux $releasever - BaseOS\n"
        "mirrorlist=https://mirrors.rockylinux.org/mirrorlist?repo=BaseOS-$releasever\n"
        "gpgcheck=1\nenabled=1\n"
        "[local]\nbaseurl=http://10.0.0.5/repo/\ngpgcheck=0\n"
        "[off]\nbaseurl=http://x/\nenabled=0\n"
        "[inherit]\nbaseurl=https://y/\n"
    )
    items = parse_repo(text, default_gpgcheck=True)
    assert [(i["name"], i["scheme"], i["verified"]) for i in items] == [
        ("baseos", "https", True),
        ("local", "http", False),
        ("inherit", "https", True),
    ]
    assert parse_repo(text, default_gpgcheck=False)[2]["verified"] is False
