"""The host state a real node needs and changes, set up and put back: bridge, routes, guard, sysctls.

Every change is written first into a ledger (/run/modelops/real-node.json) so that a start after a crash
(even `kill -9` of the test process) finds what the dead run left and removes it before anything else:
processes in the node's cgroups and the containerd shims of its socket, mounts under its directories,
the bridge and its routes, the guard table, the KUBE-* iptables chains, the sysctls it changed, the
directories the kubelet and CNI create at fixed paths.

The guard is an nftables table of its own (`inet modelops_guard`): at the postrouting hook it drops every
packet for (or from) the pod and Service ranges that would leave through an interface other than the
project's bridge or loopback, whatever order kube-proxy's iptables rules come in.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops_cluster.nodeconfig import BRIDGE, NodeNetwork
from modelops_support.waiting import WaitTimeout, wait_for

log = logging.getLogger(__name__)

LEDGER = Path("/run/modelops/real-node.json")
GUARD_TABLE = "modelops_guard"
# Changed by the kubelet (the first three), by the node's set-up (ip_forward), or by kube-proxy.
SYSCTLS = (
    "vm.overcommit_memory",
    "kernel.panic",
    "kernel.panic_on_oops",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",
    "net.bridge.bridge-nf-call-iptables",
)
# Paths the kubelet and the CNI plugins use whatever their configuration says.
FIXED_DIRS = ("/var/lib/kubelet", "/var/lib/cni", "/run/netns", "/var/log/pods", "/var/log/containers")


class HostSetupError(RuntimeError):
    """The host cannot carry a real node (missing tool, overlapping address range, a command refused)."""


def run(
    argv: Sequence[str], stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a host command; a failure (when checked) raises HostSetupError with its stderr."""
    try:
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=60, check=False
        )
    except FileNotFoundError as e:
        raise HostSetupError(f"{argv[0]} is not installed (make node-tools installs it)") from e
    if check and done.returncode != 0:
        raise HostSetupError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


# -- pure parts ------------------------------------------------------------------------------------


def overlaps(ranges: Iterable[str], routes: Iterable[dict[str, Any]], addresses: Iterable[str]) -> list[str]:
    """What on the machine overlaps the ranges: routes (but the project's bridge) and interface addresses."""
    wanted = [ipaddress.ip_network(r) for r in ranges]
    found = []
    for route in routes:
        dst, dev = route.get("dst", ""), route.get("dev", "")
        if dev == BRIDGE or dst in ("", "default") or route.get("type") in ("broadcast", "local"):
            continue
        try:
            net = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if any(net.version == w.version and net.overlaps(w) for w in wanted):
            found.append(f"route {dst} dev {dev}")
    for address in addresses:
        iface = ipaddress.ip_interface(address)
        if any(iface.version == w.version and iface.ip in w for w in wanted):
            found.append(f"address {address}")
    return found


def guard_ruleset(network: NodeNetwork) -> str:
    """The nftables table that keeps every packet for the cluster's ranges on this machine."""
    ranges = ", ".join(network.guarded)
    return f"""table inet {GUARD_TABLE} {{
  chain postrouting {{
    type filter hook postrouting priority 0; policy accept;
    oifname {{ "lo", "{BRIDGE}" }} accept
    ip daddr {{ {ranges} }} counter drop
    ip saddr {{ {ranges} }} counter drop
  }}
  chain forward {{
    type filter hook forward priority 0; policy accept;
    iifname "{BRIDGE}" oifname != "{BRIDGE}" counter drop
  }}
}}
"""


def without_kube_chains(saved: str) -> str:
    """An iptables-save dump with every KUBE-* chain and every rule naming one removed."""
    kept = []
    for line in saved.splitlines():
        if line.startswith(":KUBE-") or (line.startswith("-A ") and "KUBE-" in line):
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def mounts_under(mountinfo: str, roots: Iterable[Path]) -> list[str]:
    """Mount points below any of the roots, deepest first (for unmounting)."""
    prefixes = [str(r).rstrip("/") + "/" for r in roots]
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = fields[4].encode().decode("unicode_escape")
        if any(point.startswith(p) or point == p.rstrip("/") for p in prefixes):
            points.append(point)
    return sorted(set(points), key=lambda p: (-p.count("/"), p))


@dataclass
class Ledger:
    """What a run changed on the host, so that the next start can undo it if this run dies."""

    workdir: str
    images_root: str
    sysctls: dict[str, str] = field(default_factory=dict)
    created_dirs: list[str] = field(default_factory=list)

    def save(self) -> None:
        LEDGER.parent.mkdir(parents=True, exist_ok=True)
        LEDGER.write_text(json.dumps(self.__dict__, indent=2))

    @classmethod
    def load(cls) -> Ledger | None:
        try:
            return cls(**json.loads(LEDGER.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None


# -- the edge ----------------------------------------------------------------------------------------


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctls() -> dict[str, str]:
    values = {}
    for name in SYSCTLS:
        with contextlib.suppress(OSError):
            values[name] = _sysctl_path(name).read_text().strip()
    return values


def write_sysctl(name: str, value: str) -> None:
    try:
        _sysctl_path(name).write_text(value)
    except OSError as e:
        log.warning("sysctl %s=%s not restored: %s", name, value, e)


def check_ranges(network: NodeNetwork) -> None:
    """Refuse to start when a range is already routed or held by an interface of this machine."""
    routes = json.loads(run(["ip", "-j", "route", "show", "table", "all"]).stdout or "[]")
    addrs = json.loads(run(["ip", "-j", "addr", "show"]).stdout or "[]")
    addresses = [
        f"{a['local']}/{a['prefixlen']}"
        for link in addrs
        if link.get("ifname") != BRIDGE
        for a in link.get("addr_info", [])
    ]
    clash = overlaps(network.guarded, routes, addresses)
    if clash:
        raise HostSetupError(
            f"the cluster's ranges {', '.join(network.guarded)} overlap this machine's {'; '.join(clash)}"
        )


def set_up(network: NodeNetwork, ledger: Ledger) -> None:
    """Bridge with the node address, routes for both ranges to it, the guard, ip_forward on."""
    check_ranges(network)
    ledger.sysctls = read_sysctls()
    ledger.created_dirs = [d for d in FIXED_DIRS if not Path(d).exists()]
    ledger.save()  # before the first change: a crash from here on is undone by the next start
    run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    run(["ip", "addr", "add", network.bridge_address, "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])
    for cidr in network.guarded:
        # Addresses of the ranges without a pod or a DNAT rule go to the bridge and die there.
        run(["ip", "route", "replace", cidr, "dev", BRIDGE])
    run(["nft", "-f", "-"], stdin=guard_ruleset(network))
    write_sysctl("net.ipv4.ip_forward", "1")


def kill_node_processes(workdir: Path, socket: Path) -> int:
    """SIGKILL what a node run leaves: processes in kubepods cgroups, shims of its socket, its components."""
    victims: set[int] = set()
    for procs in Path("/sys/fs/cgroup").glob("*/kubepods*/**/cgroup.procs"):
        with contextlib.suppress(OSError, ValueError):
            victims.update(int(p) for p in procs.read_text().split())
    marks = (str(socket), str(workdir))
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if any(m in cmdline for m in marks):
                victims.add(int(proc.name))
    for pid in victims:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)

    def left() -> set[int]:
        return {p for p in victims if Path(f"/proc/{p}").exists()}

    with contextlib.suppress(WaitTimeout):
        wait_for(lambda: not left(), 10, 0.1, "killed processes to go")
    return len(left())


def remove_cgroups() -> None:
    """rmdir the kubelet's cgroups (children first) in every v1 hierarchy."""
    for top in Path("/sys/fs/cgroup").glob("*/kubepods*"):
        for d in sorted((p for p in [top, *top.rglob("*")] if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                d.rmdir()


def unmount_under(roots: Iterable[Path]) -> None:
    for point in mounts_under(Path("/proc/self/mountinfo").read_text(), roots):
        run(["umount", "-l", point], check=False)


def remove_kube_chains() -> None:
    """Drop every KUBE-* chain and the rules jumping to them (IPv4 and IPv6), leaving other rules."""
    for save, restore in (("iptables-save", "iptables-restore"), ("ip6tables-save", "ip6tables-restore")):
        if shutil.which(save) is None:
            continue
        saved = run([save], check=False).stdout
        if "KUBE-" in saved:
            run([restore, "-w"], stdin=without_kube_chains(saved), check=False)


def tear_down(ledger: Ledger, socket: Path) -> None:
    """Undo everything a run did (also for a run that died): idempotent, never raises for what is gone."""
    workdir, images_root = Path(ledger.workdir), Path(ledger.images_root)
    left = kill_node_processes(workdir, socket)
    if left:
        log.warning("%d node processes did not end after SIGKILL", left)
    unmount_under([workdir, images_root, *(Path(d) for d in FIXED_DIRS)])
    shutil.rmtree(socket.parent, ignore_errors=True)  # the socket's own short directory
    remove_cgroups()
    run(["nft", "delete", "table", "inet", GUARD_TABLE], check=False)
    remove_kube_chains()
    run(["ip", "link", "del", BRIDGE], check=False)  # takes its routes and the pods' veth ends along
    for name, value in ledger.sysctls.items():
        write_sysctl(name, value)
    for d in ledger.created_dirs:
        shutil.rmtree(d, ignore_errors=True)
    LEDGER.unlink(missing_ok=True)


def clear_leftovers(socket_of: Callable[[Path], Path]) -> bool:
    """Tear down what a dead run left, if its ledger is there; `socket_of(workdir)` names its socket."""
    ledger = Ledger.load()
    if ledger is None:
        return False
    log.warning(
        "a previous real-node run under %s did not stop cleanly: removing what it left", ledger.workdir
    )
    tear_down(ledger, socket_of(Path(ledger.workdir)))
    return True
