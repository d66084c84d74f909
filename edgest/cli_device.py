"""``edgest device serve``: make this machine a node of an edgest Ray cluster, advertising its targets and devices.

A node offers Ray custom resources: ``edgest-target:<name>`` for each target whose toolchain is installed
here, and ``device:<label>`` (one unit) for each device label given, e.g. a Jetson, or a phone on USB.
Bench cells are placed by them (:mod:`edgest.executors.cluster`). ``--print`` shows the ``ray start``
line instead of running it, for hosts that start Ray their own way (systemd, KubeRay, ``ray up``).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click

from edgest.errors import BadInput


def ray_start_command(labels: list[str], address: str | None, num_cpus: int | None = None) -> list[str]:
    """The ``ray start`` command line for this machine: join ``address`` (or be the head when None)."""
    from edgest.executors.cluster import node_resources

    resources = json.dumps(node_resources(labels), separators=(",", ":"))
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray") or "ray"
    where = [f"--address={address}"] if address else ["--head"]
    return [ray, "start", *where, f"--resources={resources}", *([f"--num-cpus={num_cpus}"] if num_cpus else [])]


def _labels(text: str) -> list[str]:
    labels = [s.strip() for s in text.split(",") if s.strip()] if text else []
    bad = [label for label in labels if any(c in label for c in " :=")]
    if bad:
        raise BadInput(f"device label '{bad[0]}' has a space, ':' or '='; use letters, digits, '-' and '_', e.g. jetson-orin")
    return labels


def _check_head_address(address: str | None) -> None:
    """BadInput unless ``address`` is the head's ``host:port`` (ray start prints a traceback for anything else)."""
    host, _, port = (address or "").rpartition(":")
    if address is not None and (not host or not port.isdigit() or address.startswith("ray://")):
        raise BadInput(f"--address '{address}': a node joins its head by host:port, e.g. 10.0.0.5:6379 (the "
                       "head's Ray port); leave --address out to make this host a new cluster's head")


@click.group("device")
def device_group() -> None:
    """Device hosts: machines that join a Ray cluster to compile and time bench cells."""


@device_group.command("serve")
@click.option("--labels", default="", metavar="LABEL,...", help="Device labels this host times on, e.g. jetson-orin,tensorrt.")
@click.option("--address", help="The cluster's head (host:6379) [default: start a new cluster with this host as its head].")
@click.option("--num-cpus", type=click.IntRange(1, 4096), help="CPUs this node offers to cells [default: Ray's count].")
@click.option("--print", "print_only", is_flag=True, help="Print the `ray start` command instead of running it.")
def serve_cmd(labels: str, address: str | None, num_cpus: int | None, print_only: bool) -> int:
    """Start a Ray node here advertising LABELS and the installed targets (edgest-target:NAME, device:LABEL)."""
    from edgest.executors.cluster import check_reachable, import_ray

    _check_head_address(address)
    command = ray_start_command(_labels(labels), address, num_cpus)
    if print_only:
        click.echo(shlex.join(command))
        return 0
    import_ray()  # one line naming the install when Ray is missing
    if address:  # ray start waits on an address nothing answers at, then prints a traceback
        check_reachable(address, fix="start the head there first (edgest device serve, without --address)")
    click.echo(f"edgest: starting: {shlex.join(command)}", err=True)
    done = subprocess.run(command, check=False)
    if done.returncode != 0:
        raise BadInput(f"ray start failed (exit {done.returncode}); see its output above")
    click.echo("edgest: this host is a node now; `ray stop` leaves the cluster", err=True)
    return 0
