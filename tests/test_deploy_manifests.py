"""The Kubernetes manifests (deploy/kubernetes/) and the Dockerfile against the CLI they run:
its flags, ports, probes, environment, seeds from DNS, the secret file and the grace period of
a graceful leave. Parsed with pyyaml; nothing here needs a cluster or a container engine."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from actors.cli.main import build_parser
from actors.discovery import DnsSeeds
from messages.address import Address
from messages.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "deploy" / "kubernetes"
DOCKERFILE = ROOT / "Dockerfile"
CLI_SOURCES = sorted((ROOT / "actors" / "cli").glob("*.py"))

Manifest = dict[str, Any]


def manifests() -> list[Manifest]:
    """Every document of every YAML file in deploy/kubernetes, but the kustomization."""
    documents: list[Manifest] = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            documents.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return documents


def one(kind: str) -> Manifest:
    found = [doc for doc in manifests() if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in {MANIFESTS}, found {len(found)}"
    return found[0]


def workload() -> Manifest:
    found = [doc for doc in manifests() if doc["kind"] in ("StatefulSet", "Deployment")]
    assert len(found) == 1, "expected one StatefulSet or Deployment"
    return found[0]


def pod_spec() -> Manifest:
    spec: Manifest = workload()["spec"]["template"]["spec"]
    return spec


def member_container() -> Manifest:
    (container,) = [c for c in pod_spec()["containers"] if c["args"][0] == "member"]
    return container


def member_args() -> list[str]:
    args: list[str] = member_container()["args"]
    return args


def flag_value(flag: str) -> str:
    """The value of ``flag`` in the container's args (``--flag value`` or ``--flag=value``)."""
    args = member_args()
    for i, arg in enumerate(args):
        if arg == flag:
            return args[i + 1]
        if arg.startswith(f"{flag}="):
            return arg.split("=", 1)[1]
    pytest.fail(f"the member container's args have no {flag}")


def flag_address(flag: str) -> Address:
    """The address a flag names, with Kubernetes' $(VAR) references replaced by an IP."""
    return Address.parse(re.sub(r"\$\([A-Z_][A-Z0-9_]*\)", "10.0.0.1", flag_value(flag)))


def container_ports() -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in member_container()["ports"]}


def port_number(port: int | str) -> int:
    """A probe's or a target's port: a number, or the name of a container port."""
    return port if isinstance(port, int) else container_ports()[port]


def member_flags() -> set[str]:
    """Every option string of ``membership member`` (from the CLI's own parser)."""
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    member: argparse.ArgumentParser = commands.choices["member"]
    return set(member._option_string_actions)


# -- the container's command line --------------------------------------------------------------


def test_every_flag_in_the_container_args_is_a_flag_of_the_cli() -> None:
    used = {arg.split("=", 1)[0] for arg in member_args() if arg.startswith("-")}
    unknown = sorted(used - member_flags())
    assert unknown == [], f"the manifests use flags `membership member` does not have: {unknown}"


def test_the_probes_ask_the_health_endpoints_on_the_http_port() -> None:
    container = member_container()
    http = flag_address("--http")
    assert http.host in ("0.0.0.0", "10.0.0.1"), "the kubelet probes the pod's IP"
    for probe, path in (("readinessProbe", "/health/ready"), ("livenessProbe", "/health/alive")):
        get = container[probe]["httpGet"]
        assert get["path"] == path
        assert port_number(get["port"]) == http.port, f"{probe} asks another port than --http"


def test_the_container_ports_are_the_ports_of_the_flags() -> None:
    ports = container_ports()
    assert ports == {"membership": flag_address("--bind").port, "http": flag_address("--http").port}


def test_the_member_advertises_its_pod_ip_from_the_downward_api() -> None:
    assert flag_value("--bind").startswith("$(POD_IP):")
    env = {item["name"]: item for item in member_container()["env"]}
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"


def test_every_env_variable_is_read_by_the_cli_or_used_in_the_args() -> None:
    cli = "\n".join(path.read_text() for path in CLI_SOURCES)
    args = " ".join(member_args())
    for item in member_container().get("env", []):
        name = item["name"]
        used = f"$({name})" in args or re.search(rf"[\"']{name}[\"']", cli) is not None
        assert used, f"env {name} is neither read by actors/cli nor used in the container args"


# -- seeds from DNS, secret, leave -------------------------------------------------------------


def test_the_headless_service_is_the_seed_dns_name_and_publishes_joining_pods() -> None:
    service = one("Service")
    spec = service["spec"]
    seeds = DnsSeeds.parse(flag_value("--seed-dns"))
    name = service["metadata"]["name"]
    assert spec["clusterIP"] == "None", "seeds need one record per pod: a headless Service"
    assert seeds.name == name or seeds.name.startswith(f"{name}."), "--seed-dns names another"
    assert workload()["spec"].get("serviceName", name) == name
    # A pod is ready once it has joined; it needs the records of pods that are not, yet.
    assert spec["publishNotReadyAddresses"] is True
    labels = workload()["spec"]["template"]["metadata"]["labels"]
    assert spec["selector"].items() <= labels.items()
    (port,) = [p for p in spec["ports"] if p["name"] == "membership"]  # SRV _membership._tcp
    assert port_number(port["targetPort"]) == flag_address("--bind").port
    assert seeds.port in (None, port["port"])


def test_the_secret_file_comes_from_a_kubernetes_secret_mounted_read_only() -> None:
    path = Path(flag_value("--secret-file"))
    (mount,) = [
        m for m in member_container()["volumeMounts"] if Path(m["mountPath"]) == path.parent
    ]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod_spec()["volumes"] if v["name"] == mount["name"]]
    items = volume["secret"]["items"]
    assert path.name in [item["path"] for item in items]
    assert volume["secret"]["defaultMode"] & 0o007 == 0, "the secret file is not world-readable"
    assert pod_spec()["securityContext"]["fsGroup"] == pod_spec()["securityContext"]["runAsUser"]


def test_the_grace_period_covers_a_graceful_leave() -> None:
    """SIGTERM makes ``membership member`` leave (tests/test_cli_processes.py); ``Node.leave``
    waits up to ``leave_timeout`` + ``ask_timeout`` before it stops without the leave."""
    settings = Settings.lan()
    longest_leave = settings.leave_timeout + settings.ask_timeout
    assert pod_spec()["terminationGracePeriodSeconds"] >= longest_leave


def test_members_start_one_at_a_time_so_only_the_first_forms_the_cluster() -> None:
    spec = workload()["spec"]
    assert workload()["kind"] == "StatefulSet"
    assert spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    budget = one("PodDisruptionBudget")["spec"]
    assert budget["maxUnavailable"] == 1
    assert budget["selector"]["matchLabels"] == spec["selector"]["matchLabels"]


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    files = {path.name for path in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    (image,) = kustomization["images"]
    assert image["name"] == member_container()["image"]


# -- the image ---------------------------------------------------------------------------------


def dockerfile(instruction: str) -> list[str]:
    """The arguments of every ``instruction`` line of the Dockerfile (continuations joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [
        line.split(None, 1)[1].strip()
        for line in text.splitlines()
        if line.split(None, 1)[:1] == [instruction]
    ]


def test_the_image_runs_membership_as_the_pods_unprivileged_user() -> None:
    assert dockerfile("FROM")[-1] == "python:3.11-slim"
    assert dockerfile("ENTRYPOINT") == ['["membership"]']
    (user,) = dockerfile("USER")
    uid, _, gid = user.partition(":")
    security = pod_spec()["securityContext"]
    assert security["runAsNonRoot"] is True
    assert int(uid) == security["runAsUser"] != 0
    assert int(gid) == security["runAsGroup"]


def test_the_image_exposes_the_container_ports() -> None:
    exposed = {int(port) for line in dockerfile("EXPOSE") for port in shlex.split(line)}
    assert exposed == set(container_ports().values())
