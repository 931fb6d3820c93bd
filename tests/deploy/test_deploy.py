"""deploy/: the Dockerfile, compose and Kubernetes manifests, checked without a Docker engine.

Every YAML file parses and passes yamllint; the essentials an operator relies on are
asserted (probes, non-root, the mounted configurations parse with the environment they
reference). Where the dev extra's linters are installed (CI), the Kubernetes manifests
are validated against the Kubernetes schemas, compose.yaml against the Compose spec and
the Dockerfile by hadolint.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.parse
import urllib.request
from functools import cache
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from yamllint import linter
from yamllint.config import YamlLintConfig

from relay.checks import warnings
from relay.config import Config, parse, seconds
from relay.hardening import insecure_listen
from tests.support import free_port

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
YAML_FILES = sorted(p for p in DEPLOY.rglob("*.y*ml") if p.name != ".yamllint.yaml")
CONFIG_PATH = "/etc/relay/relay.yaml"
_REQUIRED_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@cache
def _documents() -> list[dict[str, Any]]:
    """Every manifest under deploy/kubernetes/ (the kustomization aside)."""
    found: list[dict[str, Any]] = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            found.extend(_load_all(path))
    return found


def _manifests() -> dict[str, dict[str, Any]]:
    """kind → the one manifest of a kind there is one of."""
    kinds = [doc["kind"] for doc in _documents()]
    return {doc["kind"]: doc for doc in _documents() if kinds.count(doc["kind"]) == 1}


def _named(kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in _documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


ROLES = ("ingress", "delivery")


def _deployment(role: str) -> dict[str, Any]:
    return _named("Deployment", f"relay-{role}")


def _container(role: str = "ingress") -> dict[str, Any]:
    [container] = _deployment(role)["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_the_deploy_tree() -> None:
    names = {p.relative_to(DEPLOY).as_posix() for p in DEPLOY.rglob("*") if p.is_file()}
    assert {"Dockerfile", "compose.yaml", "relay.compose.yaml", "constraints.txt"} <= names
    assert sorted((d["kind"], d["metadata"]["name"]) for d in _documents()) == [
        ("ConfigMap", "relay-config"),
        ("Deployment", "relay-delivery"),
        ("Deployment", "relay-ingress"),
        ("Ingress", "relay"),
        ("Job", "relay-topics"),
        ("PodDisruptionBudget", "relay-delivery"),
        ("PodDisruptionBudget", "relay-ingress"),
        ("Secret", "relay-secrets"),
        ("Service", "relay"),
        ("StatefulSet", "relay-ingress"),
    ]
    assert (ROOT / "docs" / "production.md").is_file()


@pytest.mark.parametrize("path", YAML_FILES, ids=[p.name for p in YAML_FILES])
def test_yaml_parses_and_passes_yamllint(path: Path) -> None:
    assert _load_all(path)
    config = YamlLintConfig(file=str(DEPLOY / ".yamllint.yaml"))
    problems = [str(p) for p in linter.run(path.read_text(), config, str(path))]
    assert not problems, problems


# --- Kubernetes ----------------------------------------------------------------------


def test_kustomization_applies_everything_but_the_example_secret() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    examples = {p.name for p in KUBERNETES.glob("*.example.yaml")}
    assert examples == {"secret.example.yaml", "statefulset-ingress.example.yaml"}
    assert listed == on_disk - examples


def test_the_statefulset_example_is_the_ingress_deployment_with_a_claim() -> None:
    deployment, stateful = _deployment("ingress"), _named("StatefulSet", "relay-ingress")
    pod, stateful_pod = deployment["spec"]["template"], stateful["spec"]["template"]
    assert stateful_pod["metadata"] == pod["metadata"]
    assert stateful_pod["spec"]["containers"] == pod["spec"]["containers"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    stateful_volumes = {v["name"]: v for v in stateful_pod["spec"]["volumes"]}
    assert stateful_volumes == {k: v for k, v in volumes.items() if k != "data"}
    [claim] = stateful["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    config = _configmap_config("ingress")
    assert config.kafka is not None
    storage = _bytes(claim["spec"]["resources"]["requests"]["storage"])
    assert storage > 2 * config.kafka.spool_max_bytes
    assert stateful["spec"]["serviceName"] == _manifests()["Service"]["metadata"]["name"]


@pytest.mark.parametrize("role", ROLES)
def test_deployment_probes_resources_and_security(role: str) -> None:
    deployment = _deployment(role)
    pod = deployment["spec"]["template"]["spec"]
    container = _container(role)
    config = _configmap_config(role)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert ports["http"] == config.listen.port
    assert container["args"] == ["serve", "--config", CONFIG_PATH, "--role", role]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    # Room to shut down gracefully: preStop, then relay's own grace period.
    prestop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] >= prestop + seconds(config.shutdown_grace)
    # The read-only root still has its writable places: data_dir and /tmp.
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_mount = mounts["/etc/relay"]
    assert config_mount["readOnly"] is True
    config_map = volumes[config_mount["name"]]["configMap"]["name"]
    assert config_map == _manifests()["ConfigMap"]["metadata"]["name"]
    assert "/tmp" in mounts
    # The spool fits its volume with room for SQLite (pages, WAL): eviction loses it.
    data = volumes[mounts[config.data_dir]["name"]]["emptyDir"]
    assert config.kafka is not None
    assert _bytes(data["sizeLimit"]) > 2 * config.kafka.spool_max_bytes


@pytest.mark.parametrize("role", ROLES)
def test_metrics_and_admin_are_on_their_own_port(role: str) -> None:
    config = _configmap_config(role)
    assert config.admin.listen is not None
    ports = {p["name"]: p["containerPort"] for p in _container(role)["ports"]}
    assert ports["admin"] == config.admin.listen.port != ports["http"]
    annotations = _deployment(role)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(config.admin.listen.port)
    assert annotations["prometheus.io/path"] == "/metrics"


def _bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti)?", quantity)
    assert match is not None, quantity
    return int(match.group(1)) * units.get(match.group(2) or "", 1)


def test_service_pdbs_and_ingress_select_the_right_pods() -> None:
    for role in ROLES:
        deployment = _deployment(role)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        pdb = _named("PodDisruptionBudget", f"relay-{role}")
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    ingress_labels = _deployment("ingress")["spec"]["template"]["metadata"]["labels"]
    delivery_labels = _deployment("delivery")["spec"]["template"]["metadata"]["labels"]
    service = _manifests()["Service"]
    selector = service["spec"]["selector"].items()
    assert selector <= ingress_labels.items() and not selector <= delivery_labels.items()
    [port] = service["spec"]["ports"]
    assert port["targetPort"] == "http"  # never the admin port


def test_the_ingress_serves_hooks_only_over_tls() -> None:
    ingress = _manifests()["Ingress"]
    service = _manifests()["Service"]
    [rule] = ingress["spec"]["rules"]
    [tls] = ingress["spec"]["tls"]
    assert rule["host"] in tls["hosts"] and tls["secretName"]
    [path] = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/v1/hooks/", "Prefix")
    backend = path["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}


def test_the_topics_job_creates_every_topic_relay_uses() -> None:
    job = _manifests()["Job"]
    [container] = job["spec"]["template"]["spec"]["containers"]
    script = " ".join(container["args"])
    words = set(re.split(r"[\s;]+", script))
    config = _configmap_config("ingress")
    topics = {config.topics.events, config.topics.raw, config.topics.deadletter}
    topics |= {route.topic for route in config.routes}
    topics |= {t for sub in config.subscribers for t in sub.topic_list(config.topics.events)}
    for topic in topics:
        assert topic in words, topic
    assert "--if-not-exists" in script
    env = {var["name"]: var["value"] for var in container["env"]}
    assert env["KAFKA_BOOTSTRAP"] == _container_env("ingress")["KAFKA_BOOTSTRAP"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["image"] == _compose()["services"]["kafka-init"]["image"]


def _container_env(role: str = "ingress") -> dict[str, str]:
    """The container's environment, secrets taken from secret.example.yaml."""
    secret = _manifests()["Secret"]
    env: dict[str, str] = {}
    for var in _container(role)["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret["metadata"]["name"]
            assert ref["key"] in secret["stringData"], f"{ref['key']} not in the Secret"
            env[var["name"]] = secret["stringData"][ref["key"]]
    return env


def _configmap_config(role: str = "ingress") -> Config:
    text = _manifests()["ConfigMap"]["data"]["relay.yaml"]
    return parse(text, env=_container_env(role), name="configmap relay.yaml")


@pytest.mark.parametrize("role", ROLES)
def test_configmap_relay_yaml_parses_with_the_env_it_references(role: str) -> None:
    text = _manifests()["ConfigMap"]["data"]["relay.yaml"]
    required = set(_REQUIRED_VAR.findall(text))
    assert required and required <= set(_container_env(role))
    config = _configmap_config(role)
    assert config.kafka is not None
    assert config.sources and all(source.tokens for source in config.sources.values())
    assert config.subscribers, "the delivery role needs something to deliver to"
    assert not warnings(config)  # relay check --strict passes it


def test_manifests_validate_against_the_kubernetes_schemas() -> None:
    validate = pytest.importorskip("kubernetes_validate", reason="dev extra not installed")
    version = validate.latest_version()
    for manifest in _documents():
        validate.validate(manifest, version, strict=True)


# --- compose ---------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


OPERATOR_SECRETS = {
    "NEXLOO_TOKEN": "nexloo-operator-token-0123456789",
    "TRINO_TOKEN": "trino-operator-token-0123456789",
    "PLUGCHAT_TOKEN": "plugchat-operator-token-0123456789",
    "ECHO_WEBHOOK_SECRET": "whsec_b3BlcmF0b3Itc2VjcmV0LTMyLWJ5dGVzLWxvbmchIQ==",
}
"""What an operator sets before ``docker compose up`` (compose has no defaults for them)."""


def _compose_value(value: Any) -> str:
    """Compose interpolation: ``${X:-default}`` → default, ``${X:?message}`` → the operator's
    value (required: compose refuses to start without it)."""
    text = str(value)
    text = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", text)
    text = re.sub(
        r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?[^}]*\}", lambda m: OPERATOR_SECRETS[m.group(1)], text
    )
    assert not re.search(r"\$\{[^}]*\}", text.replace("$$", "")), f"no default: {value}"
    return text.replace("$$", "$")


def test_compose_runs_kafka_in_kraft_mode() -> None:
    services = _compose()["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert not any("zookeeper" in name.lower() for name in services)
    assert "healthcheck" in kafka


def test_compose_mounts_a_relay_config_that_parses() -> None:
    services = _compose()["services"]
    relay = services["relay"]
    assert relay["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    mounts = dict(
        (volume.split(":")[1], volume.split(":")[0])
        for volume in relay["volumes"]
        if volume.startswith("./")
    )
    source = DEPLOY / mounts[CONFIG_PATH]
    env = {name: _compose_value(value) for name, value in relay["environment"].items()}
    config = parse(source.read_text(), env=env, name=str(source))
    assert config.kafka is not None
    assert not warnings(config)  # relay check --strict passes it
    # relay reaches Kafka on the listener the broker advertises to containers.
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert all(f"//{server}" in advertised for server in config.kafka.servers)
    # Every topic relay writes is created up front.
    init = re.split(r"[\s;]+", " ".join(services["kafka-init"]["command"]))
    topics = {config.topics.events, config.topics.raw, config.topics.deadletter}
    for topic in topics | {route.topic for route in config.routes}:
        assert topic in init, topic
    # Subscribers are other compose services.
    for subscriber in getattr(config, "subscribers", []):
        host = urllib.parse.urlsplit(subscriber.url).hostname
        assert host in services, subscriber.url
    port = config.listen.port
    assert relay["ports"] == [f"127.0.0.1:{port}:{port}"]  # loopback until the operator opens it
    assert services["kafka"]["ports"] == ["127.0.0.1:9094:9094"]
    # No secret has a default: compose refuses to start until the operator sets each one.
    for name in OPERATOR_SECRETS:
        assert re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", relay["environment"][name]), name
    # And with the operator's values, relay would listen beyond loopback.
    assert insecure_listen(config, config.listen.host) is None
    depends = relay["depends_on"]
    assert depends["kafka-init"]["condition"] == "service_completed_successfully"


def test_compose_validates_against_the_compose_spec() -> None:
    pytest.importorskip("check_jsonschema", reason="dev extra not installed")
    spec = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(spec.read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(_compose())


def test_the_example_subscriber_answers(tmp_path: Path) -> None:
    port = free_port()
    env = {"PORT": str(port), "PATH": "/usr/bin:/bin"}
    echo = DEPLOY / "subscriber" / "echo.py"
    process = subprocess.Popen(
        [sys.executable, str(echo)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                    assert r.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline, "the echo subscriber did not start"
                time.sleep(0.05)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/hooks/chat",
            data=b'{"id": "e1"}',
            headers={"webhook-id": "e1", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=2) as response:
            assert response.status == 204
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=5)
    line = json.loads(out.splitlines()[0])
    assert line["webhook-id"] == "e1" and json.loads(line["body"]) == {"id": "e1"}


# --- Dockerfile ------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def test_dockerfile_essentials() -> None:
    instructions = _instructions()
    args = dict(arg.split("=", 1) for op, arg in instructions if op == "ARG" and "=" in arg)
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", args["PYTHON_IMAGE"])
    stages = [arg for op, arg in instructions if op == "FROM"]
    assert len(stages) == 2 and stages[0].endswith(" AS build")
    assert any(op == "COPY" and arg.startswith("--from=build") for op, arg in instructions)
    [user] = [arg for op, arg in instructions if op == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    [healthcheck] = [arg for op, arg in instructions if op == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    [entrypoint] = [json.loads(arg) for op, arg in instructions if op == "ENTRYPOINT"]
    [cmd] = [json.loads(arg) for op, arg in instructions if op == "CMD"]
    assert [*entrypoint, *cmd] == ["relay", "serve", "--config", CONFIG_PATH]
    config = _configmap_config()
    assert config.admin.listen is not None
    [exposed] = [arg.split() for op, arg in instructions if op == "EXPOSE"]
    assert exposed == [str(config.listen.port), str(config.admin.listen.port)]
    # The build context (the repository root) is trimmed to what the image needs.
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert "*" in ignore and {"!pyproject.toml", "!README.md", "!relay/"} <= set(ignore)
    assert "!deploy/constraints.txt" in ignore
    # Pinned, with uvloop and every compression codec.
    [install] = [arg for op, arg in instructions if op == "RUN" and "pip install" in arg]
    assert "--constraint constraints.txt" in install and "'.[fast,kafka]'" in install
    copies = [arg.split() for op, arg in instructions if op == "COPY"]
    assert ["deploy/constraints.txt", "./constraints.txt"] in copies


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (DEPLOY / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"not pinned with ==: {line}"
            pins[canonicalize_name(name)] = version
    return pins


def _runtime_closure() -> set[str]:
    """Every distribution relay[fast,kafka] needs on Python 3.11, from installed metadata."""
    seen: dict[str, set[str]] = {}
    todo: list[tuple[str, set[str]]] = [("relay", {"fast", "kafka"})]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if key in seen and extras <= seen[key]:
            continue
        seen[key] = seen.get(key, set()) | extras
        for text in metadata.distribution(key).requires or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(
                marker.evaluate({"python_version": "3.11", "extra": extra})
                for extra in seen[key] | {""}
            ):
                todo.append((requirement.name, set(requirement.extras)))
    return set(seen) - {"relay"}


def test_constraints_pin_every_runtime_dependency_inside_pyprojects_ranges() -> None:
    pins = _pins()
    assert _runtime_closure() <= set(pins), _runtime_closure() - set(pins)
    assert {"uvloop", "cramjam", "aiokafka", "aiohttp"} <= set(pins)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    direct = list(project["dependencies"]) + list(project["optional-dependencies"]["fast"])
    for text in direct:
        requirement = Requirement(text)
        pin = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(pin), f"{requirement}: pinned {pin}"


def test_hadolint() -> None:
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if hadolint is None:
        pytest.skip("hadolint (dev extra) not installed")
    result = subprocess.run(
        [hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
