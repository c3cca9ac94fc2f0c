"""The deployment files, checked offline: the Dockerfile with hadolint and the BuildKit
parser, the compose file with a strict Compose-spec parser, the Kubernetes manifests against
the Kubernetes OpenAPI schemas, all YAML with yamllint; and what ties them to the code: the
OFFRAMP_* names are Settings fields, the config loads, probes hit /ready and /health, the
image runs as the user the pods expect and builds llama.cpp with the Makefile's flags."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dockerfile
import kubernetes_validate
import pytest
import yaml
from compose_spec import PyCompose
from yamllint import linter
from yamllint.config import YamlLintConfig

from offramp.models.registry import load_registry
from offramp.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
CONFIG = DEPLOY / "offramp.yaml"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCS = ROOT / "docs" / "deployment.md"
K8S_VERSION = "1.30"
# Settings the usage ledger, cache and API-key work adds; the deploy files already set them.
ARRIVING_SETTINGS = {"redis_url", "ledger_url", "auth", "admin_key"}
OFFRAMP_ENV = re.compile(r"\bOFFRAMP_([A-Z0-9_]+)\b")


# --- helpers -------------------------------------------------------------------------


def _stages() -> list[list[dockerfile.Command]]:
    """The Dockerfile's instructions, one list per FROM (global ARGs before the first)."""
    stages: list[list[dockerfile.Command]] = [[]]
    for command in dockerfile.parse_file(str(ROOT / "Dockerfile")):
        if command.cmd == "FROM":
            stages.append([])
        stages[-1].append(command)
    return stages


def _instructions(stage: list[dockerfile.Command], cmd: str) -> list[dockerfile.Command]:
    return [c for c in stage if c.cmd == cmd]


def _args() -> dict[str, str]:
    args: dict[str, str] = {}
    for stage in _stages():
        for command in _instructions(stage, "ARG"):
            name, _, default = command.value[0].partition("=")
            args[name] = default.strip('"')
    return args


def _env(stage: list[dockerfile.Command]) -> dict[str, str]:
    env: dict[str, str] = {}
    for command in _instructions(stage, "ENV"):
        pairs = command.value
        env.update(zip(pairs[::2], pairs[1::2], strict=True))
    return env


def _assert_settings(env_names: Iterable[str], where: str) -> None:
    """Every OFFRAMP_* name is ``OFFRAMP_<field>`` of a Settings field."""
    fields = set(Settings.model_fields) | ARRIVING_SETTINGS
    for name in env_names:
        match = OFFRAMP_ENV.fullmatch(name)
        if match:
            assert match.group(1).lower() in fields, f"{where}: {name} is no Settings field"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _manifests() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in _docs(path):
            if doc["kind"] != "Kustomization":
                yield path, doc


def _find(kind: str, name: str) -> dict[str, Any]:
    found = [d for _, d in _manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} manifests"
    return found[0]


def _pod(workload: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = workload["spec"]["template"]
    return pod


def _offramp_container() -> dict[str, Any]:
    container: dict[str, Any] = _pod(_find("Deployment", "offramp"))["spec"]["containers"][0]
    return container


def _uncomment(text: str, first_line: str) -> str:
    """``text`` with the commented block that starts at ``first_line`` made live."""
    lines = text.splitlines()
    start = lines.index(first_line)
    indent = first_line[: len(first_line) - len(first_line.lstrip())]
    end = start
    while end < len(lines) and lines[end].startswith(indent + "# "):
        lines[end] = indent + lines[end][len(indent) + 2 :]
        end += 1
    return "\n".join(lines) + "\n"


def _compose_with_vllm() -> dict[str, Any]:
    text = _uncomment(COMPOSE.read_text(encoding="utf-8"), "  # vllm:")
    compose = PyCompose.from_yaml(_uncomment(text, "  # hf-cache:"))
    compose.validate()
    return compose.to_dict()


def _vllm_deployment() -> dict[str, Any]:
    """The config's route deployment named ``vllm``."""
    routes = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["routes"]
    found = [d for r in routes for d in r["deployments"] if d.get("name") == "vllm"]
    assert len(found) == 1
    assert found[0]["provider"] == "openai-compatible"
    deployment: dict[str, Any] = found[0]
    return deployment


def _vllm_upstream() -> tuple[str, int]:
    """Host and port of the config's OpenAI-compatible upstream named ``vllm``."""
    url = urlsplit(_vllm_deployment()["base_url"])
    assert url.hostname is not None and url.port is not None and url.path == "/v1"
    return url.hostname, url.port


# --- Dockerfile ----------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_llama_cpp_is_built_with_the_makefiles_portable_flags() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^LLAMA_CMAKE_ARGS \?= (.+)$", makefile, re.M)
    assert match is not None
    flags = _args()["LLAMA_CMAKE_ARGS"]
    assert flags == match.group(1).strip()
    assert "-DGGML_NATIVE=OFF" in flags.split()
    builder = _stages()[1]
    assert builder[0].value[-2:] == ("AS", "builder")
    runs = [c.value[0] for c in _instructions(builder, "RUN")]
    wheel = [r for r in runs if "pip wheel" in r and "llama-cpp-python" in r]
    assert len(wheel) == 1
    assert 'CMAKE_ARGS="${LLAMA_CMAKE_ARGS}"' in wheel[0]
    assert "-c constraints.txt" in wheel[0]
    # The project install may only take that wheel, never build a native one.
    assert any("--only-binary llama-cpp-python" in r and r.endswith(" .") for r in runs)


def test_torch_is_the_cpu_build_pinned_by_constraints() -> None:
    assert _args()["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    constraints = (ROOT / "constraints.txt").read_text(encoding="utf-8")
    assert re.search(r"^torch==\d+\.\d+\.\d+$", constraints, re.M)
    builder = _stages()[1]
    order = [c.cmd + " " + " ".join(c.value) for c in builder]
    torch = [i for i, line in enumerate(order) if line.endswith("-c constraints.txt torch")]
    assert len(torch) == 1
    assert '--index-url "${TORCH_INDEX_URL}"' in order[torch[0]]
    copied = [i for i, line in enumerate(order) if line.startswith("COPY constraints.txt")]
    assert copied and copied[0] < torch[0]


def test_runtime_image_runs_offline_as_non_root_and_serves_on_the_settings_port() -> None:
    runtime = _stages()[-1]
    user = _instructions(runtime, "USER")[-1].value[0]
    assert user.isdigit() and int(user) != 0
    setup = " ".join(c.value[0] for c in _instructions(runtime, "RUN"))
    assert f"useradd --uid {user} " in setup
    env = _env(runtime)
    assert env["HF_HUB_OFFLINE"] == "1"
    _assert_settings(env, "Dockerfile ENV")
    port = str(Settings.model_fields["port"].default)
    assert env["OFFRAMP_PORT"] == port
    assert _instructions(runtime, "EXPOSE")[0].value == (port,)
    assert _instructions(runtime, "ENTRYPOINT")[0].value == ("offramp",)
    assert _instructions(runtime, "CMD")[0].value == ("serve", "--host", "0.0.0.0")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "offramp" in scripts
    check = _instructions(runtime, "HEALTHCHECK")[0]
    assert check.value[0] == "CMD" and "/health" in check.value[-1]
    assert any(flag.startswith("--start-period=") for flag in check.flags)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; ``!`` lets a path back in."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, glob) or fnmatch.fnmatch(path, glob.replace("**/", "")):
            ignored = not negate
    return ignored


def test_dockerignore_admits_what_the_dockerfile_copies_and_nothing_heavy() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    copies = [c for stage in _stages() for c in _instructions(stage, "COPY") if not c.flags]
    sources = [src for c in copies for src in c.value[:-1]]
    assert set(sources) == {"constraints.txt", "pyproject.toml", "README.md", "src"}
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not _ignored(source, patterns), source
    for heavy in (".venv", ".git", "tests", "bench", "src/offramp/__pycache__"):
        assert _ignored(heavy, patterns), heavy


def test_every_build_arg_is_documented() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for name in _args():
        assert f"`{name}`" in docs, name
    assert "-DGGML_CUDA=on" in docs


# --- docker compose ------------------------------------------------------------------


def test_compose_file_is_valid_and_names_its_services() -> None:
    compose = PyCompose.from_yaml(COMPOSE.read_text(encoding="utf-8"))
    compose.validate()
    spec = compose.to_dict()
    services = spec["services"]
    assert list(services) == ["offramp", "redis", "postgres"]
    for service in services.values():
        for needed in service.get("depends_on", {}):
            assert needed in services
            assert "healthcheck" in services[needed]
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith(".") or source in spec["volumes"], source
    assert services["offramp"]["build"]["context"] == ".."
    assert (COMPOSE.parent / "../Dockerfile").resolve().is_file()


def test_compose_offramp_service_uses_settings_names_and_the_deploy_config() -> None:
    offramp = PyCompose.from_yaml(COMPOSE.read_text(encoding="utf-8")).to_dict()["services"][
        "offramp"
    ]
    env: dict[str, str] = offramp["environment"]
    _assert_settings(env, "docker-compose.yml")
    assert {"OFFRAMP_REDIS_URL", "OFFRAMP_LEDGER_URL"} <= set(env)
    assert urlsplit(env["OFFRAMP_REDIS_URL"]).hostname == "redis"
    assert urlsplit(env["OFFRAMP_LEDGER_URL"]).hostname == "postgres"
    mounts = dict(v.split(":")[:2] for v in offramp["volumes"])
    assert mounts["./offramp.yaml"] == env["OFFRAMP_CONFIG"]
    assert mounts["models"] == "/models"
    port = str(Settings.model_fields["port"].default)
    assert offramp["ports"] == [f"{port}:{port}"]


def test_compose_vllm_service_is_valid_once_uncommented() -> None:
    spec = _compose_with_vllm()
    vllm = spec["services"]["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert "hf-cache" in spec["volumes"]
    host, port = _vllm_upstream()
    assert host == "vllm" and port == 8000  # vLLM's default port, which the command keeps
    assert "--port" not in vllm["command"]


# --- the offramp config --------------------------------------------------------------


def test_deploy_config_loads_and_its_routes_fall_back_to_configured_models() -> None:
    settings = load_settings(CONFIG)
    assert settings.port == Settings.model_fields["port"].default
    registry = load_registry(CONFIG)
    names = {name for name, _ in registry.names()}
    routes = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["routes"]
    for route in routes:
        assert not {route["name"], *route.get("aliases", [])} & names, route["name"]
        local = [d["model"] for d in route["deployments"] if "provider" not in d]
        assert local and all(m in names for m in local), route["name"]


def test_configmap_carries_the_deploy_config_verbatim() -> None:
    configmap = _find("ConfigMap", "offramp-config")
    assert configmap["data"]["offramp.yaml"] == CONFIG.read_text(encoding="utf-8")


# --- Kubernetes ----------------------------------------------------------------------


def test_every_manifest_validates_against_the_kubernetes_schemas() -> None:
    seen: set[str] = set()
    for path, doc in _manifests():
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.relative_to(ROOT)} {doc['kind']}: {exc.message}")
        seen.add(doc["kind"])
    expected = {"Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler", "StatefulSet"}
    assert expected <= seen


def test_kustomizations_apply_every_manifest_but_the_example_secret() -> None:
    for kustomization in K8S.rglob("kustomization.yaml"):
        (doc,) = _docs(kustomization)
        here = {p.name for p in kustomization.parent.glob("*.yaml")}
        wanted = here - {"kustomization.yaml"} - {n for n in here if ".example." in n}
        assert sorted(doc["resources"]) == sorted(wanted), kustomization
        assert doc["namespace"] == "offramp"


def test_deployment_probes_point_at_ready_and_health_on_the_served_port() -> None:
    container = _offramp_container()
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert str(ports[container[probe]["httpGet"]["port"]]) == env["OFFRAMP_PORT"]
    assert env["OFFRAMP_PORT"] == str(Settings.model_fields["port"].default)
    runtime = _stages()[-1]
    assert tuple(container["args"]) == _instructions(runtime, "CMD")[0].value


def test_deployment_resources_match_threads_and_the_image_user() -> None:
    container = _offramp_container()
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["OFFRAMP_N_THREADS"] == resources["limits"]["cpu"]
    pod = _pod(_find("Deployment", "offramp"))["spec"]
    user = _instructions(_stages()[-1], "USER")[-1].value[0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == user
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_deployment_env_names_settings_and_mounts_the_configmap() -> None:
    container = _offramp_container()
    env = container["env"]
    names = [e["name"] for e in env]
    _assert_settings(names, "deployment.yaml")
    assert {"OFFRAMP_REDIS_URL", "OFFRAMP_LEDGER_URL", "OFFRAMP_ADMIN_KEY"} <= set(names)
    for i, entry in enumerate(env):  # $(VAR) only sees variables defined above it
        for ref in re.findall(r"\$\(([A-Z_]+)\)", entry.get("value", "")):
            assert ref in names[:i], f"{entry['name']} uses $({ref}) before it is set"
    config = Path(next(e["value"] for e in env if e["name"] == "OFFRAMP_CONFIG"))
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(config.parent))
    volumes = {v["name"]: v for v in _pod(_find("Deployment", "offramp"))["spec"]["volumes"]}
    configmap = _find("ConfigMap", volumes[mount["name"]]["configMap"]["name"])
    assert config.name in configmap["data"]


def _secret_refs(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "secretKeyRef" in node:
            yield node["secretKeyRef"]
        for value in node.values():
            yield from _secret_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _secret_refs(item)


def test_secret_references_name_keys_of_the_documented_secret() -> None:
    secret = _find("Secret", "offramp-secrets")
    refs = [ref for _, doc in _manifests() for ref in _secret_refs(doc)]
    assert len(refs) >= 4
    for ref in refs:
        assert ref["name"] == "offramp-secrets"
        assert ref["key"] in secret["stringData"], ref["key"]
    docs = DOCS.read_text(encoding="utf-8")
    for key in secret["stringData"]:
        assert f"--from-literal={key}=" in docs, key


def test_services_and_autoscaling_target_real_workloads() -> None:
    workloads = {
        d["metadata"]["name"]: d
        for _, d in _manifests()
        if d["kind"] in {"Deployment", "StatefulSet"}
    }
    for service in (d for _, d in _manifests() if d["kind"] == "Service"):
        name = service["metadata"]["name"]
        pod = _pod(workloads[name])
        assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        ports = {p["name"] for c in pod["spec"]["containers"] for p in c["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports, name
    hpa = _find("HorizontalPodAutoscaler", "offramp")
    assert hpa["spec"]["scaleTargetRef"]["name"] in workloads
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    pdb = _find("PodDisruptionBudget", "offramp")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= (
        _pod(workloads["offramp"])["metadata"]["labels"].items()
    )


def test_ledger_and_redis_urls_reach_their_services() -> None:
    env = {e["name"]: e.get("value", "") for e in _offramp_container()["env"]}
    ledger = urlsplit(env["OFFRAMP_LEDGER_URL"])
    redis = urlsplit(env["OFFRAMP_REDIS_URL"])
    for url, service in ((ledger, "postgres"), (redis, "redis")):
        manifest = _find("Service", service)
        assert url.hostname == service
        assert url.port in {p["port"] for p in manifest["spec"]["ports"]}
    host, port = _vllm_upstream()
    vllm = _find("Service", host)
    assert port in {p["port"] for p in vllm["spec"]["ports"]}
    gpu = _pod(_find("Deployment", "vllm"))["spec"]["containers"][0]["resources"]["limits"]
    assert gpu["nvidia.com/gpu"] == 1


def test_images_and_the_served_big_model_agree_everywhere() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    compose = _compose_with_vllm()["services"]
    assert _offramp_container()["image"] == f"offramp:{version}"
    assert compose["offramp"]["image"].split(":")[0] == "offramp"
    vllm = _pod(_find("Deployment", "vllm"))["spec"]["containers"][0]
    assert vllm["image"] == compose["vllm"]["image"]
    model = _vllm_deployment()["model"]
    for args in (vllm["args"], compose["vllm"]["command"]):
        assert args[args.index("--model") + 1] == model  # vLLM answers to that name only


# --- YAML style, docs ----------------------------------------------------------------


def test_yaml_files_pass_yamllint() -> None:
    config = YamlLintConfig(file=str(ROOT / ".yamllint.yaml"))
    paths = [*sorted(DEPLOY.rglob("*.yaml")), COMPOSE]
    assert len(paths) >= 10
    problems = [
        f"{path.relative_to(ROOT)}:{p.line}: {p.message}"
        for path in paths
        for p in linter.run(path.read_text(encoding="utf-8"), config, str(path))
    ]
    assert problems == []


def test_docs_name_real_settings_and_the_readme_links_them() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    names = set(OFFRAMP_ENV.findall(docs))
    assert {"REDIS_URL", "LEDGER_URL", "N_THREADS", "CONFIG"} <= names
    _assert_settings((f"OFFRAMP_{n}" for n in names), "docs/deployment.md")
    assert "(docs/deployment.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_learning_cronjob_runs_offramp_learn_on_the_deploy_configs_route() -> None:
    from typer.main import get_command

    from offramp.cli.main import app
    from offramp.routing.config import load_routes

    job = _find("CronJob", "offramp-learn")
    container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[0] == "learn"
    command = get_command(app).commands["learn"]
    parsed = command.make_context(args[0], list(args[1:])).params  # raises on a bad option
    assert parsed["route"] in {r.name for r in load_routes(CONFIG)}
    assert parsed["base"] in {m.name for m in load_registry(CONFIG).specs}
    _assert_settings([e["name"] for e in container["env"]], "learn-cronjob.yaml")
    # it writes where the servers read: the same models volume, at the image's models dir
    volumes = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
    served = _pod(_find("Deployment", "offramp"))["spec"]["volumes"]
    claim = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in volumes}
    assert claim["models"] == "offramp-models"
    assert {v["name"]: v.get("persistentVolumeClaim") for v in served}["models"] == {
        "claimName": "offramp-models"
    }
    assert parsed["state_dir"] is not None and str(parsed["state_dir"]).startswith("/models/")
