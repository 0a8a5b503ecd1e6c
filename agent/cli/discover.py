"""`canhgac-agent discover`: sweep the agency LAN for devices and risky TCP services.

Only configured or attached private subnets are probed (agent/discovery/targets.py);
`--dry-run` prints exactly what would be probed and sends nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from agent import app
from agent.cli.common import UsageFailure, agent_errors, config_option, lang_option
from agent.config import load_config
from agent.discovery.config import DiscoveryConfig, parse_discovery, parse_ports
from agent.discovery.errors import Refusal, RefusalKind, SubnetRefusedError
from agent.discovery.facts import result_dict
from agent.discovery.model import Fallback, PortState, ScanResult
from agent.discovery.scan import run_scan
from agent.discovery.targets import Plan, attached_subnets, make_plan
from rules.terminal import printable

TEXT = {
    "plan": ("Sẽ dò {hosts} địa chỉ, {ports} cổng TCP, tối đa {pps} gói/giây:",
             "Would probe {hosts} addresses, {ports} TCP ports, at most {pps} packets/s:"),
    "subnet": ("  mạng {net} qua {iface} (địa chỉ của máy này {own}): {first} .. {last}",
               "  subnet {net} via {iface} (this host {own}): {first} .. {last}"),
    "routed": ("  mạng {net} sau bộ định tuyến (ICMP echo, TCP 443 và 80): {first} .. {last}",
               "  subnet {net} behind a router (ICMP echo, TCP 443 and 80): {first} .. {last}"),
    "ports": ("  cổng: {ports}", "  ports: {ports}"),
    "found": ("{devices} thiết bị trên {subnets}; cổng dò bằng {method}",
              "{devices} devices on {subnets}; ports probed by {method}"),
    "header": ("ĐỊA CHỈ IP       MAC                NHÀ SẢN XUẤT      CỔNG MỞ",
               "IP               MAC                VENDOR            OPEN PORTS"),
    "none": ("(không)", "(none)"),
    "note": ("Lưu ý: {note}", "Note: {note}"),
    "filtered": ("  [bị lọc: {ports}]", "  [filtered: {ports}]"),
}  # fmt: skip
# Why connect was used, in Vietnamese: only the framing, since the system's reason in
# the result's notes is English text (as `check` words a collector's failure).
FALLBACK_VI = {
    Fallback.NO_SCAPY: "Lưu ý: dò bằng kết nối TCP thay cho ARP và SYN vì chưa cài gói scapy"
    " (phần bổ sung `scan` của tác tử).",
    Fallback.RAW_DENIED: "Lưu ý: dò bằng kết nối TCP thay cho ARP và SYN vì tác tử không có quyền"
    " gửi gói tin thô (cần quyền root hoặc CAP_NET_RAW).",
    Fallback.RAW_UNAVAILABLE: "Lưu ý: dò bằng kết nối TCP thay cho ARP và SYN vì hệ điều hành"
    " không cho gửi gói tin thô.",
}

# Why a subnet is refused, in Vietnamese (click's own "Error:" framing is English).
REFUSAL_VI = {
    RefusalKind.NOT_CIDR: "không phải một mạng CIDR",
    RefusalKind.IPV6: "chưa hỗ trợ dò mạng IPv6",
    RefusalKind.SPECIAL: "dải địa chỉ vòng lặp, đa hướng hoặc không xác định",
    RefusalKind.PUBLIC: "dải địa chỉ công cộng (đặt agent.discovery.allow_public để được dò)",
    RefusalKind.TOO_LARGE: "{size} địa chỉ, nhiều hơn giới hạn max_hosts {max_hosts}",
    RefusalKind.NOT_ATTACHED: "không nằm trong mạng nào gắn với máy này"
    " (không dò mạng sau bộ định tuyến theo cách này)",
    RefusalKind.ATTACHED_ROUTED: "mạng gắn trực tiếp với máy này: khai báo trong subnets"
    " (dò bằng ARP)",
    RefusalKind.NO_ATTACHED: "máy này không gắn với mạng IPv4 nào để dò",
}


def _refused_vi(refusal: Refusal) -> str:
    # Vietnamese groups thousands with a dot.
    reason = REFUSAL_VI[refusal.kind].format(
        size=f"{refusal.size:,}".replace(",", "."),
        max_hosts=f"{refusal.max_hosts:,}".replace(",", "."),
    )
    return f"{refusal.subnet}: {reason}" if refusal.subnet else reason


def _t(key: str, lang: str, **values: object) -> str:
    vi, en = TEXT[key]
    return (vi if lang == "vi" else en).format(**values)


@click.command()
@click.option(
    "--subnet",
    "subnets",
    multiple=True,
    help="IPv4 CIDR to sweep (repeatable); it must lie in an attached subnet."
    " Default: agent.discovery.subnets, else every attached subnet.",
)
@click.option("--ports", "ports_text", help="TCP ports, e.g. 22,80,8000-8010 (default: risky set).")
@click.option("--dry-run", is_flag=True, help="Print exactly what would be probed; send nothing.")
@click.option(
    "--format", "output_format", type=click.Choice(["table", "json"]), default="table",
    show_default=True,
)  # fmt: skip
@config_option
@lang_option
def discover(
    *,
    subnets: tuple[str, ...],
    ports_text: str | None,
    dry_run: bool,
    output_format: str,
    config_path: Path | None,
    lang: str,
) -> None:
    """Find devices on the LAN (ARP, two passes) and their open TCP ports (SYN, or
    TCP connect without raw sockets). Needs root or CAP_NET_RAW for ARP and SYN."""
    with agent_errors():
        config = load_config(config_path, app.environment())
        settings: DiscoveryConfig = parse_discovery(config.discovery)
        ports = parse_ports(ports_text) if ports_text is not None else None
        try:
            plan = make_plan(subnets, settings, attached_subnets(), ports)
        except SubnetRefusedError as e:
            if lang != "vi":
                raise
            for refusal in e.refusals:
                click.echo(printable(f"Lỗi: không dò {_refused_vi(refusal)}"), err=True)
            raise click.exceptions.Exit(UsageFailure.exit_code) from e
    if dry_run:
        _print_plan(plan, output_format, lang)
        return
    with agent_errors():
        result = run_scan(plan)
    if output_format == "json":
        click.echo(json.dumps(result_dict(result, all_ports=True), indent=2))
        return
    _print_table(result, lang)


def _print_plan(plan: Plan, output_format: str, lang: str) -> None:
    if output_format == "json":
        payload = {
            "targets": [
                {
                    "subnet": str(t.network),
                    "interface": t.interface,
                    "own_address": str(t.own_address),
                    "hosts": [str(h) for h in t.hosts],
                }
                for t in plan.targets
            ],
            "routed": [
                {"subnet": str(r.network), "hosts": [str(h) for h in r.hosts]} for r in plan.routed
            ],
            "ports": list(plan.ports),
            "packets_per_second": plan.packets_per_second,
        }
        click.echo(json.dumps(payload, indent=2))
        return
    click.echo(
        _t("plan", lang, hosts=plan.host_count, ports=len(plan.ports), pps=plan.packets_per_second)
    )
    for t in plan.targets:
        first, last = (t.hosts[0], t.hosts[-1]) if t.hosts else ("-", "-")
        click.echo(
            printable(
                _t("subnet", lang, net=t.network, iface=t.interface, own=t.own_address,
                   first=first, last=last)
            )
        )  # fmt: skip
    for r in plan.routed:
        first, last = (r.hosts[0], r.hosts[-1]) if r.hosts else ("-", "-")
        click.echo(_t("routed", lang, net=r.network, first=first, last=last))
    click.echo(_t("ports", lang, ports=",".join(str(p) for p in plan.ports)))


def _print_table(result: ScanResult, lang: str) -> None:
    method = result.port_method.value if result.port_method else "-"
    subnets = ", ".join(result.subnets)
    click.echo(_t("found", lang, devices=len(result.devices), subnets=subnets, method=method))
    if lang == "vi" and result.fallback is not None:
        click.echo(FALLBACK_VI[result.fallback], err=True)
    else:
        for note in result.notes:
            click.echo(printable(_t("note", lang, note=note)), err=True)
    click.echo(_t("header", lang))
    for d in result.devices:
        opened = [f"{p.port}/{p.service}" for p in d.ports if p.state is PortState.OPEN]
        filtered = [str(p.port) for p in d.ports if p.state is PortState.FILTERED]
        ports = " ".join(opened) or _t("none", lang)
        if filtered and len(filtered) < len(d.ports):
            ports += _t("filtered", lang, ports=",".join(filtered))
        line = f"{d.ip:<16} {d.mac or '-':<18} {d.vendor[:17] or '-':<17} {ports}"
        click.echo(printable(line))
