"""deploy/ checked without a container engine, a cluster or systemd running (none is here):
what every file says is checked against what the code really reads and serves.

YAML parses; compose's service graph, volumes, environment names and commands match the CLI;
Kubernetes objects validate against their schemas (kubernetes-validate) and their containers
against the CLI; the Dockerfile copies what exists and installs what pyproject pins; the
systemd units start a command the CLI accepts and restart it on failure.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kubernetes_validate
import pytest
import typer.main
import yaml
from typer._click import Context  # typer vendors click: the CLI's own parser
from typer._click.exceptions import UsageError

from adapters.storage.keystore import KeyBundle
from seedswarm.cli import app
from seedswarm.launch.node_http import NodePages
from seedswarm.launch.node_metrics import METRICS
from seedswarm.launch.settings import ENV_PREFIX, PASSWORD_ENV, PASSWORD_FILE_ENV, NodeSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES_VERSION = "1.30.0"
METRICS_PORT = 9464
DASHBOARD_PORT = 8080
NODE_ENV = {ENV_PREFIX + f.name.upper() for f in dataclasses.fields(NodeSettings)}
NODE_ENV |= {PASSWORD_ENV, PASSWORD_FILE_ENV}


def parse_cli(args: list[str]) -> Context:
    """Parse `seedswarm ARGS` with the real command line, down to the subcommand (the command
    does not run); UsageError if an option or argument is wrong."""
    command: Any = typer.main.get_command(app)
    ctx = command.make_context("seedswarm", list(args))
    while hasattr(command, "resolve_command"):  # a group: on to its subcommand
        protected = getattr(ctx, "protected_args", None) or getattr(ctx, "_protected_args", [])
        name, sub, rest = command.resolve_command(ctx, [*protected, *ctx.args])
        assert sub is not None and name is not None, args
        command, ctx = sub, sub.make_context(name, rest, parent=ctx)
    return ctx


def node_routes() -> set[str]:
    settings = NodeSettings(role="validator", network=Path("n"), keystore=Path("k"),
                            state_dir=Path("s"))
    pages = NodePages(SimpleNamespace(settings=settings), KeyBundle.generate())  # type: ignore[arg-type]
    return set(pages._probe_routes()) | set(pages._dashboard_routes())


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def load_compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


# -- everything --------------------------------------------------------------------------


def test_the_layout_the_issue_asks_for_exists_and_every_yaml_parses() -> None:
    for path in ("Dockerfile", "compose.yaml", "README.md", "k8s", "systemd",
                 "grafana/dashboards/seedswarm.json"):
        assert (DEPLOY / path).exists(), path
    files = yaml_files()
    assert len(files) >= 9, files
    for path in files:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert docs, f"{path}: empty"
    json.loads((DEPLOY / "grafana" / "dashboards" / "seedswarm.json").read_text())


def test_the_cli_parser_used_here_refuses_what_the_cli_refuses() -> None:
    parse_cli(["join", "--network", "n.toml", "--role", "miner", "--faucet"])
    parse_cli(["network", "create", "--out", "x", "--dev"])
    with pytest.raises(UsageError):
        parse_cli(["join", "--network", "n.toml", "--role", "miner", "--no-such-flag"])
    with pytest.raises(UsageError):
        parse_cli(["network", "create", "--out", "x", "--round-length", "ten"])


# -- compose ------------------------------------------------------------------------------


def _seedswarm_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items()
            if str(s.get("image", "")).startswith("seedswarm:")}


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_compose_service_graph() -> None:
    services = load_compose()["services"]
    assert {"anvil", "mosquitto", "operator", "validator-1", "validator-2", "miner",
            "prometheus", "grafana"} <= set(services)
    edges = {}
    for name, service in services.items():
        depends = service.get("depends_on", [])
        targets = list(depends) if isinstance(depends, (list, dict)) else []
        assert set(targets) <= set(services), (name, targets)
        edges[name] = targets
    seen: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle {(*path, name)}"
        if name in seen:
            return
        for target in edges[name]:
            visit(target, (*path, name))
        seen.add(name)

    for name in services:
        visit(name, ())
    operator = services["operator"]
    assert operator["depends_on"]["anvil"]["condition"] == "service_healthy"
    assert "healthcheck" in operator
    for name in ("validator-1", "validator-2", "miner"):
        assert services[name]["depends_on"] == {"operator": {"condition": "service_healthy"}}
        assert services[name]["restart"] == "on-failure"
    # miners are scaled: no fixed name, no published port, no named volume a replica shares
    miner = services["miner"]
    assert "container_name" not in miner and "ports" not in miner
    assert all(not v.startswith("miner") for v in miner.get("volumes", []))


def test_compose_commands_parse_and_wire_the_network_file() -> None:
    compose = load_compose()
    services = _seedswarm_services(compose)
    assert set(services) == {"operator", "validator-1", "validator-2", "miner"}
    operator_args = services["operator"]["command"]
    ctx = parse_cli(operator_args)
    assert ctx.params["chain"] == "http://anvil:8545" and ctx.params["dev"] is True
    assert ctx.params["broker"] == "mqtt://mosquitto:1883"
    assert ctx.params["transport"] == "mqtt"
    out = ctx.params["out"]
    mounts = {m.split(":")[1]: m for m in services["operator"]["volumes"]}
    network_volume = mounts[str(out)].split(":")[0]
    assert network_volume in compose["volumes"]
    assert services["operator"]["healthcheck"]["test"][-1] == f"{out}/network.toml"
    for name in ("validator-1", "validator-2", "miner"):
        args = services[name]["command"]
        ctx = parse_cli(args)
        assert ctx.command.name == "join"
        role = "miner" if name == "miner" else "validator"
        assert ctx.params["role"] == role and ctx.params["faucet"] is True
        network_file = Path(ctx.params["network"])
        mount = next(m for m in services[name]["volumes"] if m.startswith(network_volume + ":"))
        _, target, mode = mount.split(":")
        assert network_file.parent == Path(target) == Path(out) and mode == "ro"


def test_compose_volumes_and_bind_mounts_exist() -> None:
    compose = load_compose()
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)
            else:
                assert source in declared, (name, source)
    assert (DEPLOY / "grafana" / "provisioning" / "datasources").is_dir()


def test_compose_environment_is_what_nodes_read() -> None:
    compose = load_compose()
    for name, service in _seedswarm_services(compose).items():
        env = service.get("environment", {})
        unknown = {k for k in env if k.startswith("SEEDSWARM_")} - NODE_ENV
        assert not unknown, (name, unknown)
        if name == "operator":
            continue
        assert int(env["SEEDSWARM_METRICS_PORT"]) == METRICS_PORT
        assert env["SEEDSWARM_HTTP_HOST"] == "0.0.0.0"
        if name.startswith("validator"):
            assert int(env["SEEDSWARM_DASHBOARD_PORT"]) == DASHBOARD_PORT
            assert any(p.endswith(f":{DASHBOARD_PORT}") for p in service["ports"])
        else:
            assert "SEEDSWARM_DASHBOARD_PORT" not in env  # a miner refuses one
        settings = NodeSettings(role="miner" if name == "miner" else "validator",
                                network=Path("n"), keystore=Path("k"), state_dir=Path("s"),
                                metrics_port=int(env["SEEDSWARM_METRICS_PORT"]),
                                log_format=env["SEEDSWARM_LOG_FORMAT"])
        assert settings.metrics_port == METRICS_PORT


def test_prometheus_scrapes_the_services_on_the_metrics_port() -> None:
    services = set(load_compose()["services"])
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets: list[str] = []
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            targets += static["targets"]
        for dns in job.get("dns_sd_configs", []):
            assert dns["port"] == METRICS_PORT
            assert set(dns["names"]) <= services
            targets += [f"{n}:{dns['port']}" for n in dns["names"]]
    assert {t.split(":")[0] for t in targets} == {"validator-1", "validator-2", "miner"}
    assert {int(t.split(":")[1]) for t in targets} == {METRICS_PORT}
    assert "/metrics" in node_routes()


def test_grafana_queries_only_metrics_the_nodes_serve() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "seedswarm.json").read_text())
    names = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names |= set(re.findall(r"\bseedswarm_[a-z_]+", target["expr"]))
    assert len(names) >= 20
    served = set(METRICS)
    for name in names:
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        assert name in served or base in served, name
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "seedswarm.yaml").read_text())
    grafana = load_compose()["services"]["grafana"]
    mounted = {m.split(":")[1] for m in grafana["volumes"]}
    assert provider["providers"][0]["options"]["path"] in mounted
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    uid = datasource["datasources"][0]["uid"]
    assert all(p["datasource"]["uid"] == uid for p in dashboard["panels"])


# -- Kubernetes ---------------------------------------------------------------------------


def k8s_objects() -> list[dict[str, Any]]:
    return [d for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
            for d in yaml.safe_load_all(path.read_text()) if d is not None]


def test_every_kubernetes_object_validates_against_its_schema() -> None:
    objects = k8s_objects()
    kinds = sorted(o["kind"] for o in objects)
    assert kinds.count("StatefulSet") == 2 and "ConfigMap" in kinds and "Secret" in kinds
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    broken = copy.deepcopy(next(o for o in objects if o["kind"] == "StatefulSet"))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_kubernetes_workloads_run_what_the_cli_accepts_and_probe_what_nodes_serve() -> None:
    objects = k8s_objects()
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    routes = node_routes()
    sets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "StatefulSet"}
    assert set(sets) == {"seedswarm-validator", "seedswarm-miner"}
    for name, workload in sets.items():
        role = name.removeprefix("seedswarm-")
        spec = workload["spec"]
        assert spec["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
        assert ("Service", spec["serviceName"]) in names
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        volumes = {v["name"]: v for v in pod["volumes"]} | {"data": {}}
        for volume in volumes.values():
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in names
            if "secret" in volume:
                assert ("Secret", volume["secret"]["secretName"]) in names
        (container,) = pod["containers"]
        ctx = parse_cli(container["args"])
        assert ctx.command.name == "join" and ctx.params["role"] == role
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert {k for k in env if k.startswith("SEEDSWARM_")} <= NODE_ENV
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert set(mounts.values()) <= set(volumes)
        assert Path(ctx.params["network"]).parent.as_posix() in mounts
        secret_dir = Path(env[PASSWORD_FILE_ENV]).parent.as_posix()
        password_volume = volumes[mounts[secret_dir]]
        secret = next(o for o in objects if o["kind"] == "Secret"
                      and o["metadata"]["name"] == password_volume["secret"]["secretName"])
        assert Path(env[PASSWORD_FILE_ENV]).name in secret["stringData"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == int(env["SEEDSWARM_METRICS_PORT"]) == METRICS_PORT
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = container[probe]["httpGet"]
            assert get["path"] == path and path in routes and get["port"] == "metrics"
        annotations = spec["template"]["metadata"]["annotations"]
        assert int(annotations["prometheus.io/port"]) == METRICS_PORT
        assert annotations["prometheus.io/path"] in routes
        assert container["resources"]["requests"]["cpu"]
        if role == "validator":
            assert ports["dashboard"] == int(env["SEEDSWARM_DASHBOARD_PORT"])
        else:
            assert "SEEDSWARM_DASHBOARD_PORT" not in env


# -- Dockerfile ---------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_dockerfile_copies_what_exists_and_installs_the_pinned_torch() -> None:
    steps = dockerfile()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copies = [shlex.split(rest)[:-1] for kind, rest in steps if kind == "COPY"]
    sources = {s.rstrip("/") for sources in copies for s in sources}
    for source in sources:
        assert (ROOT / source).exists(), source
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]
                ["include"]}
    assert packages <= sources, packages - sources  # every installed package is copied in
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert sources <= allowed, sources - allowed
    torch = next(d for d in pyproject["project"]["dependencies"] if d.startswith("torch=="))
    assert ("ARG", f"TORCH_VERSION={torch.removeprefix('torch==')}") in steps
    assert steps[0][0] == "FROM" and "python:3.11" in steps[0][1]


def test_the_image_runs_seedswarm_as_a_user_with_state_on_a_volume_and_a_health_check() -> None:
    steps = dockerfile()
    last = {kind: rest for kind, rest in steps}
    assert last["USER"] not in ("root", "0")
    assert json.loads(last["VOLUME"]) == ["/data"]
    entry = json.loads(last["ENTRYPOINT"])
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert entry == ["seedswarm"] and "seedswarm" in pyproject["project"]["scripts"]
    health = json.loads(last["HEALTHCHECK"].split("CMD", 1)[1])
    assert health[:2] == ["python", "-c"]
    compile(health[2], "<healthcheck>", "exec")
    assert "/healthz" in health[2] and "/healthz" in node_routes()
    env_name = re.search(r"SEEDSWARM_[A-Z_]+", health[2])
    assert env_name and env_name.group(0) == "SEEDSWARM_METRICS_PORT" in NODE_ENV
    assert f"SEEDSWARM_METRICS_PORT={METRICS_PORT}" in last["ENV"]
    assert str(METRICS_PORT) in last["EXPOSE"].split() and str(DASHBOARD_PORT) in last["EXPOSE"]


# -- systemd ------------------------------------------------------------------------------


def units() -> dict[str, dict[str, list[str]]]:
    """unit file -> "Section.Key" -> values (systemd repeats keys)."""
    out: dict[str, dict[str, list[str]]] = {}
    for path in sorted((DEPLOY / "systemd").glob("*.service")):
        section, table = "", {}
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            table.setdefault(f"{section}.{key}", []).append(value)
        out[path.name] = table
    return out


def test_systemd_units_start_a_node_and_restart_it_on_failure() -> None:
    found = units()
    assert set(found) == {"seedswarm-miner.service", "seedswarm-validator.service"}
    for name, table in found.items():
        role = name.removeprefix("seedswarm-").removesuffix(".service")
        (exec_start,) = table["Service.ExecStart"]
        argv = shlex.split(exec_start)
        assert argv[0].endswith("/seedswarm")
        ctx = parse_cli(argv[1:])
        assert ctx.command.name == role
        assert table["Service.Restart"] == ["on-failure"]
        assert table["Service.User"] != ["root"]
        env = dict(v.split("=", 1) for v in table.get("Service.Environment", []))
        assert set(env) <= NODE_ENV, set(env) - NODE_ENV
        assert env[PASSWORD_FILE_ENV].startswith("%d/")  # systemd's credentials directory
        credential = table["Service.LoadCredential"][0].split(":")[0]
        assert env[PASSWORD_FILE_ENV] == f"%d/{credential}"
        assert ("SEEDSWARM_DASHBOARD_PORT" in env) == (role == "validator")


def test_systemd_analyze_finds_nothing_wrong(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed; the units' contents are checked above")
    for path in (DEPLOY / "systemd").glob("*.service"):
        # the binary path of an installed node does not exist here: point it at one that does
        text = re.sub(r"ExecStart=\S+", "ExecStart=/bin/true", path.read_text())
        (tmp_path / path.name).write_text(text)
    done = subprocess.run([analyze, "verify", *sorted(map(str, tmp_path.glob("*.service")))],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
