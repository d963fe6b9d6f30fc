"""deploy/: the container image, the AWS cluster launcher config and the KubeRay manifests.

Nothing in deploy/ can run here (no cloud, no Kubernetes, no Docker daemon), so these tests
hold the files to what the tools themselves enforce (the JSON schema and config preparation
shipped in the installed ray package, KubeRay's validation rules) and to the security rules
in deploy/README.md. Each rule is a function that returns the problems it finds; the
mutation tests at the end show every rule catching a broken copy of the files.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import secrets
import shutil
import string
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
AWS_CONFIG = "aws-gpu-cluster.yaml"
KUBERAY = "kuberay"
CONTAINER_HOME = "/home/ray"  # the image user's home; test_dockerfile_user_home pins it

MIN_RAY = (2, 52)  # first Ray with token authentication
FORBIDDEN_PORTS = {6379: "GCS", 8265: "dashboard/job API", 10001: "Ray client"}
WORLD = {"0.0.0.0/0", "::/0"}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
SECRET_NAME = re.compile(r"(?i)token|secret|passw(or)?d|access_?key|api_?key|private_?key|credential")
NOT_A_SECRET_NAME = re.compile(r"(?i)_(path|file|name|mode)$")
PLACEHOLDER = re.compile(r"^(REPLACE_|<|\$|\{\{)")
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


# --- helpers --------------------------------------------------------------------------------


def yaml_docs(path: Path) -> list:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def strings_in(obj):
    """Every string inside a parsed YAML/JSON value."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield str(key)
            yield from strings_in(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from strings_in(item)


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", str(text))[:3])


def ray_schema_path() -> Path:
    """ray/autoscaler/ray-schema.json of the installed ray, found without importing ray."""
    spec = importlib.util.find_spec("ray")
    assert spec is not None and spec.submodule_search_locations, "ray is not installed"
    return Path(next(iter(spec.submodule_search_locations))) / "autoscaler" / "ray-schema.json"


def home_path(path: str) -> str:
    """One spelling for a path in the container user's home: ~/..."""
    path = path.strip("'\"")
    for prefix in ("${HOME}", "$HOME", CONTAINER_HOME):
        if path.startswith(prefix):
            return "~" + path[len(prefix) :]
    return path


def under_a_mount(path: str, mounts) -> bool:
    path = home_path(path)
    return any(path == m or path.startswith(m.rstrip("/") + "/") for m in map(home_path, mounts))


def dashboard_host_problems(obj, where: str) -> list[str]:
    problems = []
    for text in strings_in(obj):
        for host in re.findall(r"--dashboard-host[= ]+(\S+)", text):
            if host.strip("'\"") not in LOCAL_HOSTS:
                problems.append(f"{where}: dashboard bound to {host} (must be 127.0.0.1): {text!r}")
    return problems


# --- the AWS cluster launcher config --------------------------------------------------------


def rule_opens_forbidden_port(rule: dict) -> list[int]:
    cidrs = {r.get("CidrIp") for r in rule.get("IpRanges", [])} | {
        r.get("CidrIpv6") for r in rule.get("Ipv6Ranges", [])
    }
    if not cidrs & WORLD:
        return []
    if str(rule.get("IpProtocol", "")) == "-1" or rule.get("FromPort", -1) == -1:
        return sorted(FORBIDDEN_PORTS)
    low, high = rule["FromPort"], rule.get("ToPort", rule["FromPort"])
    return [port for port in sorted(FORBIDDEN_PORTS) if low <= port <= high]


def auth_in_commands(commands: list[str], mounts, where: str) -> list[str]:
    text = "\n".join(commands)
    problems = []
    if not re.search(r"\bexport RAY_AUTH_MODE=token\b", text):
        problems.append(f"{where}: setup commands do not export RAY_AUTH_MODE=token")
    paths = re.findall(r"RAY_AUTH_TOKEN_PATH=(\S+)", text)
    if not paths:
        problems.append(f"{where}: setup commands do not set RAY_AUTH_TOKEN_PATH")
    problems += [
        f"{where}: RAY_AUTH_TOKEN_PATH={p} is not in a file_mounts directory"
        for p in paths
        if not under_a_mount(p, mounts)
    ]
    return problems


def aws_problems(path: Path) -> list[str]:
    config = yaml.safe_load(path.read_text())
    schema = json.loads(ray_schema_path().read_text())
    problems = [
        f"ray-schema.json: {'.'.join(map(str, e.absolute_path)) or '<top>'}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(config)
    ]
    if problems:
        return problems

    # What `ray up` does with the file before it calls AWS: merge the provider's defaults,
    # fold setup_commands into the head/worker lists, check the docker and node-type sections.
    from ray.autoscaler._private.util import prepare_config, validate_config

    try:
        prepared = prepare_config(copy.deepcopy(config))
        validate_config(prepared)
    except Exception as e:  # whatever ray raises is the problem to report
        return [f"ray prepare_config/validate_config: {type(e).__name__}: {e}"]

    types = prepared["available_node_types"]
    head = prepared["head_node_type"]
    for name, node in types.items():
        if node.get("min_workers", 0) > node.get("max_workers", prepared["max_workers"]):
            problems.append(f"{name}: min_workers {node['min_workers']} > max_workers {node['max_workers']}")
    if sum(n.get("min_workers", 0) for n in types.values()) > prepared["max_workers"]:
        problems.append("the min_workers of all node types add up to more than max_workers")
    if types[head].get("resources", {}).get("CPU") != 0:
        problems.append("the head advertises CPUs: trials would run next to the driver (set resources CPU: 0)")

    # The dashboard: 127.0.0.1 on the head, never anything else anywhere.
    problems += dashboard_host_problems(config, path.name)
    head_start = " ".join(prepared["head_start_ray_commands"])
    if "--dashboard-host=127.0.0.1" not in head_start:
        problems.append("head_start_ray_commands: ray start --head lacks --dashboard-host=127.0.0.1")

    # The security group: nothing that opens 8265/10001/6379 to the internet.
    for rule in prepared["provider"].get("security_group", {}).get("IpPermissions", []):
        for port in rule_opens_forbidden_port(rule):
            problems.append(f"security group opens {port} ({FORBIDDEN_PORTS[port]}) to the internet: {rule}")

    # Token auth on every node: for login shells through the setup commands (per node type
    # worker_setup_commands replace the global ones), for the container through --env.
    mounts = prepared.get("file_mounts", {}).keys()
    problems += auth_in_commands(prepared["head_setup_commands"], mounts, f"head ({head})")
    for name, node in types.items():
        if name != head:
            commands = node.get("worker_setup_commands", prepared["worker_setup_commands"])
            problems += auth_in_commands(commands, mounts, f"worker type {name}")
    for text in strings_in(config):
        problems += [f"token auth switched off: {text!r}" for _ in re.findall(r"RAY_AUTH_MODE=(?!token\b)", text)]
    if prepared.get("docker"):
        options = " ".join(prepared["docker"].get("run_options", []))
        if not re.search(r"(--env|-e)[ =]RAY_AUTH_MODE=token\b", options):
            problems.append("docker.run_options: no --env RAY_AUTH_MODE=token for the containers")
        token_paths = re.findall(r"(?:--env|-e)[ =]RAY_AUTH_TOKEN_PATH=(\S+)", options)
        if not token_paths:
            problems.append("docker.run_options: no --env RAY_AUTH_TOKEN_PATH for the containers")
        problems += [
            f"docker.run_options: RAY_AUTH_TOKEN_PATH={p} is not in a file_mounts directory"
            for p in token_paths
            if not under_a_mount(p, mounts)
        ]
    return problems


# --- the KubeRay manifests -------------------------------------------------------------------


def container_problems(env: list, where: str) -> list[str]:
    problems = []
    by_name = {e.get("name"): e for e in env or []}
    mode = by_name.get("RAY_AUTH_MODE", {})
    if mode.get("value") != "token":
        problems.append(f"{where}: RAY_AUTH_MODE is not 'token'")
    token = by_name.get("RAY_AUTH_TOKEN")
    ref = ((token or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    if token is None or "value" in token or not ref.get("name") or not ref.get("key"):
        problems.append(f"{where}: RAY_AUTH_TOKEN must come from a secretKeyRef (name and key), never a value")
    for e in env or []:
        name = e.get("name", "")
        if SECRET_NAME.search(name) and not NOT_A_SECRET_NAME.search(name) and "value" in e:
            problems.append(f"{where}: {name} has a literal value; take it from a Secret")
    return problems


def pod_problems(template: dict, first_container: str | None, where: str) -> list[str]:
    containers = ((template or {}).get("spec") or {}).get("containers") or []
    if not containers:
        return [f"{where}: template.spec.containers is empty"]
    problems = []
    if first_container and containers[0].get("name") != first_container:
        problems.append(f"{where}: the first container must be the Ray container {first_container!r}")
    for c in containers:
        problems += container_problems(c.get("env"), f"{where} container {c.get('name')}")
        if not c.get("image"):
            problems.append(f"{where} container {c.get('name')}: no image")
    return problems


def cluster_spec_problems(spec: dict, where: str) -> list[str]:
    problems = []
    version = spec.get("rayVersion")
    if not version or version_tuple(version)[:2] < MIN_RAY:
        problems.append(f"{where}: rayVersion {version!r} must be >= 2.52 (token auth)")
    auth = spec.get("authOptions")
    if auth is not None and auth.get("mode") != "token":
        problems.append(f"{where}: authOptions.mode is {auth.get('mode')!r}, not 'token'")

    head = spec.get("headGroupSpec") or {}
    if not isinstance(head.get("rayStartParams"), dict):
        problems.append(f"{where}: headGroupSpec.rayStartParams is required (a map)")
    problems += pod_problems(head.get("template"), "ray-head", f"{where} head")
    if head.get("serviceType", "ClusterIP") != "ClusterIP":
        problems.append(f"{where}: head serviceType {head['serviceType']} exposes the head; use ClusterIP")
    head_service_type = (((head.get("headService") or {}).get("spec")) or {}).get("type")
    if head_service_type in ("LoadBalancer", "NodePort"):
        problems.append(f"{where}: headService type {head_service_type} exposes the head")
    if head.get("enableIngress"):
        problems.append(f"{where}: enableIngress exposes the dashboard")
    if (head.get("rayStartParams") or {}).get("num-cpus") != "0":
        problems.append(f'{where}: the head must advertise no CPUs (rayStartParams num-cpus: "0")')

    if spec.get("enableInTreeAutoscaling"):
        options = spec.get("autoscalerOptions") or {}
        problems += container_problems(options.get("env"), f"{where} autoscaler")

    groups = spec.get("workerGroupSpecs") or []
    if not groups:
        problems.append(f"{where}: no workerGroupSpecs")
    names = [g.get("groupName") for g in groups]
    if len(set(names)) != len(names):
        problems.append(f"{where}: worker group names repeat: {names}")
    for group in groups:
        gw = f"{where} worker group {group.get('groupName')}"
        missing = [
            k
            for k in ("groupName", "replicas", "minReplicas", "maxReplicas", "rayStartParams", "template")
            if k not in group
        ]
        if missing:
            problems.append(f"{gw}: missing {', '.join(missing)}")
            continue
        if not group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]:
            problems.append(f"{gw}: needs minReplicas <= replicas <= maxReplicas")
        problems += pod_problems(group["template"], "ray-worker", gw)
        ray_container = ((group["template"].get("spec") or {}).get("containers") or [{}])[0]
        limits = (ray_container.get("resources") or {}).get("limits") or {}
        if not limits.get("nvidia.com/gpu"):
            problems.append(f"{gw}: the Ray container requests no nvidia.com/gpu")
        if (group.get("rayStartParams") or {}).get("num-gpus") == "0":
            problems.append(f"{gw}: num-gpus 0 hides the GPU from Ray")

    for group_params in [head.get("rayStartParams") or {}] + [g.get("rayStartParams") or {} for g in groups]:
        host = group_params.get("dashboard-host")
        if host is not None and host not in LOCAL_HOSTS:
            problems.append(f"{where}: rayStartParams dashboard-host {host} exposes the dashboard")
    problems += dashboard_host_problems(spec, where)
    return problems


def name_problems(doc: dict, max_length: int, where: str) -> list[str]:
    name = (doc.get("metadata") or {}).get("name", "")
    if len(name) > max_length or not DNS1035.match(name):
        return [f"{where}: metadata.name {name!r} must be a DNS-1035 label of at most {max_length} characters"]
    return []


def rayjob_problems(doc: dict, where: str) -> list[str]:
    spec = doc.get("spec") or {}
    problems = name_problems(doc, 47, where)
    entrypoint = spec.get("entrypoint") or ""
    if not re.match(r"^\s*rnnsweep submit\s", entrypoint):
        problems.append(f"{where}: the entrypoint does not run `rnnsweep submit`: {entrypoint!r}")
    if not spec.get("rayClusterSpec") and not (spec.get("clusterSelector") or {}).get("ray.io/cluster"):
        problems.append(f"{where}: needs rayClusterSpec or clusterSelector")
    if spec.get("rayClusterSpec"):
        problems += cluster_spec_problems(spec["rayClusterSpec"], f"{where} rayClusterSpec")
        if not spec.get("shutdownAfterJobFinishes"):
            problems.append(f"{where}: shutdownAfterJobFinishes is off: the GPU cluster would outlive the sweep")
    if spec.get("ttlSecondsAfterFinished", 0) < 0 or (
        spec.get("ttlSecondsAfterFinished", 0) > 0 and not spec.get("shutdownAfterJobFinishes")
    ):
        problems.append(f"{where}: ttlSecondsAfterFinished needs shutdownAfterJobFinishes and must be >= 0")
    mode = spec.get("submissionMode", "K8sJobMode")
    if mode == "K8sJobMode":
        template = spec.get("submitterPodTemplate")
        if template is None:
            problems.append(f"{where}: the submitter needs a submitterPodTemplate carrying the auth token")
        else:
            problems += pod_problems(template, None, f"{where} submitter")
            if (template.get("spec") or {}).get("restartPolicy") != "Never":
                problems.append(f"{where}: the submitter's restartPolicy must be Never")
    return problems


def kuberay_problems(folder: Path) -> list[str]:
    problems = []
    for path in sorted(folder.glob("*.yaml")):
        for doc in yaml_docs(path):
            where = f"{path.name} {doc.get('kind')} {(doc.get('metadata') or {}).get('name')}"
            api, kind = doc.get("apiVersion"), doc.get("kind")
            if (api, kind) == ("ray.io/v1", "RayCluster"):
                problems += name_problems(doc, 53, where)
                problems += cluster_spec_problems(doc.get("spec") or {}, where)
            elif (api, kind) == ("ray.io/v1", "RayJob"):
                problems += rayjob_problems(doc, where)
            elif (api, kind) == ("v1", "Service"):
                if (doc.get("spec") or {}).get("type") in ("LoadBalancer", "NodePort"):
                    problems.append(f"{where}: a {doc['spec']['type']} Service exposes Ray outside the cluster")
            elif (api, kind) == ("v1", "Secret"):
                values = {**(doc.get("data") or {}), **(doc.get("stringData") or {})}
                problems += [
                    f"{where}: {k} holds a value, not a REPLACE_... placeholder"
                    for k, v in values.items()
                    if not PLACEHOLDER.match(str(v))
                ]
            elif (api, kind) not in {("v1", "ConfigMap"), ("v1", "PersistentVolumeClaim")}:
                problems.append(f"{where}: unexpected {api} {kind}: teach tests/test_deploy.py its rules")
    return problems


# --- secrets in plain text ------------------------------------------------------------------

ASSIGNMENT = re.compile(
    r"""(?<![A-Za-z0-9_])(?=(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)["']?\s*[=:]\s*(?P<value>"[^"\n]*"|'[^'\n]*'|[^\s,}#'"]+))"""
)
YAML_ENV_PAIR = re.compile(
    r"^\s*-?\s*name:\s*['\"]?(?P<name>[A-Za-z_][A-Za-z0-9_]*)['\"]?\s*\n\s*value:\s*(?P<value>\S.*)$", re.MULTILINE
)


def looks_random(value: str) -> bool:
    if re.fullmatch(r"[0-9a-fA-F]{32,}", value):
        return True
    return bool(
        re.fullmatch(r"[A-Za-z0-9+/=_-]{20,}", value)
        and re.search(r"[a-z]", value)
        and re.search(r"[A-Z]", value)
        and re.search(r"[0-9]", value)
    )


def secret_problems(folder: Path) -> list[str]:
    problems = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            problems.append(f"{path.name}: not text; deploy/ should hold only text files")
            continue
        where = str(path.relative_to(folder.parent))
        for match in re.finditer(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", text):
            problems.append(f"{where}: AWS access key id {match[0][:8]}...")
        if re.search(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----", text):
            problems.append(f"{where}: a private key block")
        for match in re.finditer(r"(?<![0-9a-fA-F:])[0-9a-fA-F]{64}(?![0-9a-fA-F])", text):
            if not text[: match.start()].endswith("sha256:"):
                problems.append(f"{where}: a 64-hex-digit string (the shape of a Ray auth token)")
        for match in re.finditer(r"(?i)aws_secret_access_key[\"']?\s*[=:]\s*[\"']?([^\s\"'#]+)", text):
            if not PLACEHOLDER.match(match[1]):
                problems.append(f"{where}: aws_secret_access_key with a value")
        for match in ASSIGNMENT.finditer(text):
            key, value = match["key"], match["value"].strip("'\"")
            if SECRET_NAME.search(key) and not PLACEHOLDER.match(value) and looks_random(value):
                problems.append(f"{where}: {key} is assigned something that looks like a real secret")
        for match in YAML_ENV_PAIR.finditer(text):
            name, value = match["name"], match["value"].strip().strip("'\"")
            if SECRET_NAME.search(name) and not NOT_A_SECRET_NAME.search(name) and not PLACEHOLDER.match(value):
                problems.append(f"{where}: env {name} has a literal value")
    return problems


# --- the Dockerfile -------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def package_folders(pyproject: Path) -> set[str]:
    tool = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]
    return {folder.split("/")[0] for folder in tool["package-dir"].values()}


def dockerfile_problems(dockerfile: Path, pyproject: Path) -> list[str]:
    instructions = dockerfile_instructions(dockerfile.read_text())
    problems = []
    args: dict[str, str] = {}
    stages: set[str] = set()
    for op, rest in instructions:
        if op == "ARG" and "=" in rest:
            name, default = rest.split("=", 1)
            args[name.strip()] = default.strip().strip("'\"")
        if op in ("ARG", "ENV"):
            for name, value in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)[= ]\s*(\S+)", rest):
                if SECRET_NAME.search(name) and not NOT_A_SECRET_NAME.search(name) and value:
                    problems.append(f"{op} {name}: secrets must not be baked into the image")
        if op == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m[1], m[0]), words[0])
            if len(words) >= 3 and words[1].upper() == "AS":
                stages.add(words[2])
            if image in stages:
                continue
            name_and_tag = image.split("@")[0]
            tag = name_and_tag.rsplit(":", 1)[1] if ":" in name_and_tag.rsplit("/", 1)[-1] else None
            if "$" in image or tag is None or tag == "latest":
                problems.append(f"FROM {image}: pin the base image to a version tag (not latest)")

    users = [rest.split()[0] for op, rest in instructions if op == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the image must end with USER <non-root user>")

    runs = [rest for op, rest in instructions if op == "RUN"]
    if not any(re.search(r"pip install\b[^&;|]*\s\.(\s|$)", run) for run in runs):
        problems.append("no RUN pip install ... . (the project itself is not installed)")

    copied = [rest.split() for op, rest in instructions if op in ("COPY", "ADD")]
    sources = {src.rstrip("/") for words in copied for src in [w for w in words if not w.startswith("--")][:-1]}
    for folder in sorted(package_folders(pyproject) | {"pyproject.toml", "README.md"}):
        if folder not in sources and "." not in sources:
            problems.append(f"{folder}: named in pyproject.toml but not copied into the image")
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    if ignore.exists():
        patterns = [
            line.strip() for line in ignore.read_text().splitlines() if line.strip() and not line.startswith("#")
        ]
        if patterns and patterns[0] == "*":
            for folder in sorted(package_folders(pyproject) | {"pyproject.toml", "README.md"}):
                if f"!{folder}" not in patterns:
                    problems.append(f"{ignore.name}: {folder} is not let into the build context")

    ray = args.get("RAY_VERSION")
    if ray is None or version_tuple(ray)[:2] < MIN_RAY:
        problems.append(f"ARG RAY_VERSION={ray}: Ray >= 2.52 is needed for token authentication")
    return problems


# --- the files as they are ------------------------------------------------------------------


def test_the_aws_cluster_config_validates_and_keeps_ray_private():
    assert aws_problems(DEPLOY / AWS_CONFIG) == []


def test_the_kuberay_manifests_carry_what_kuberay_requires_and_keep_ray_private():
    docs = {path.name: yaml_docs(path) for path in (DEPLOY / KUBERAY).glob("*.yaml")}
    kinds = {doc["kind"] for found in docs.values() for doc in found}
    assert {"RayCluster", "RayJob", "Secret", "ConfigMap", "PersistentVolumeClaim"} <= kinds
    assert all(doc.get("apiVersion") and doc.get("kind") for found in docs.values() for doc in found)
    assert kuberay_problems(DEPLOY / KUBERAY) == []


def test_no_secret_is_written_in_plain_text_under_deploy():
    assert secret_problems(DEPLOY) == []


def test_the_dockerfile_pins_its_base_installs_the_project_and_drops_root():
    assert dockerfile_problems(DEPLOY / "Dockerfile", ROOT / "pyproject.toml") == []


def test_dockerfile_user_home_is_where_the_configs_mount_the_token():
    text = (DEPLOY / "Dockerfile").read_text()
    assert f"--home-dir {CONTAINER_HOME}" in text and f"HOME={CONTAINER_HOME}" in text


# --- the files agree with each other ---------------------------------------------------------


def items_in(obj):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield key, value
            yield from items_in(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from items_in(item)


def kuberay_doc(kind: str) -> dict:
    return next(d for p in (DEPLOY / KUBERAY).glob("*.yaml") for d in yaml_docs(p) if d["kind"] == kind)


def test_the_rayjob_runs_the_same_cluster_as_the_raycluster():
    assert kuberay_doc("RayJob")["spec"]["rayClusterSpec"] == kuberay_doc("RayCluster")["spec"]


def test_every_node_runs_the_image_and_the_ray_of_the_dockerfile():
    aws = yaml.safe_load((DEPLOY / AWS_CONFIG).read_text())
    images = {aws["docker"]["image"]}
    for path in (DEPLOY / KUBERAY).glob("*.yaml"):
        for doc in yaml_docs(path):
            images |= {v for k, v in items_in(doc) if k == "image"}
    assert len(images) == 1, f"nodes run different images: {images}"
    dockerfile_ray = re.search(r"^ARG RAY_VERSION=(\S+)", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE)[1]
    for kind in ("RayCluster", "RayJob"):
        spec = kuberay_doc(kind)["spec"]
        assert spec.get("rayVersion", spec.get("rayClusterSpec", {}).get("rayVersion")) == dockerfile_ray


def test_the_storage_uri_the_entrypoint_expands_is_the_same_wherever_it_is_expanded():
    job = kuberay_doc("RayJob")["spec"]
    assert "$RNNSWEEP_STORAGE" in job["entrypoint"]
    containers = (
        job["submitterPodTemplate"]["spec"]["containers"]
        + job["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"]
    )
    values = {e.get("value") for c in containers for e in c.get("env", []) if e["name"] == "RNNSWEEP_STORAGE"}
    assert len(values) == 1 and None not in values, f"RNNSWEEP_STORAGE differs or is missing: {values}"
    assert next(iter(values)).startswith(("s3://", "gs://")), "trials on many nodes need shared object storage"


def test_the_configmap_grid_is_a_valid_grid_that_fits_a_worker_pod(tmp_path):
    from rnnsweep.service.spec import load_grid

    grid = tmp_path / "grid.toml"
    grid.write_text(kuberay_doc("ConfigMap")["data"]["grid.toml"])
    trials = load_grid(grid).trials
    assert trials
    for group in kuberay_doc("RayCluster")["spec"]["workerGroupSpecs"]:
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert max(t.resources.cpus_per_trial for t in trials) <= float(limits["cpu"])
        assert max(t.resources.gpus_per_trial for t in trials) <= float(limits["nvidia.com/gpu"])


def test_every_placeholder_is_listed_in_the_readme():
    placeholder = re.compile(r"REPLACE_WITH_[A-Za-z0-9_-]*[A-Za-z0-9]")
    readme = (DEPLOY / "README.md").read_text()
    used = {
        m
        for p in DEPLOY.rglob("*")
        if p.is_file() and p.name != "README.md"
        for m in placeholder.findall(p.read_text())
    }
    assert used, "no placeholders found: has the image/registry moved?"
    assert used <= set(placeholder.findall(readme)), (
        f"not in deploy/README.md: {sorted(used - set(placeholder.findall(readme)))}"
    )


# --- each rule catches a broken copy ---------------------------------------------------------


@pytest.fixture
def deploy_copy(tmp_path) -> Path:
    return Path(shutil.copytree(DEPLOY, tmp_path / "deploy"))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not in {path.name} exactly once: update the mutation test"
    path.write_text(text.replace(old, new))


def fake_token() -> str:
    return secrets.token_hex(32)  # made at run time so this file never holds one


@pytest.mark.parametrize(
    "old, new, expected",
    [
        (
            "--dashboard-host=127.0.0.1 --num-cpus=0",
            "--dashboard-host=0.0.0.0 --num-cpus=0",
            "dashboard bound to 0.0.0.0",
        ),
        ("--dashboard-host=127.0.0.1 --num-cpus=0", "--num-cpus=0", "lacks --dashboard-host=127.0.0.1"),
        (
            "IpPermissions: []",
            "IpPermissions: [{IpProtocol: tcp, FromPort: 8265, ToPort: 8265, IpRanges: [{CidrIp: 0.0.0.0/0}]}]",
            "opens 8265",
        ),
        ("IpPermissions: []", "IpPermissions: [{IpProtocol: '-1', IpRanges: [{CidrIp: 0.0.0.0/0}]}]", "opens 6379"),
        ("- --env RAY_AUTH_MODE=token\n", "", "no --env RAY_AUTH_MODE=token"),
        ("'export RAY_AUTH_MODE=token'", "'export RAY_AUTH_MODE=disabled'", "do not export RAY_AUTH_MODE=token"),
        (
            "ulimit -n 65536;\n    ray start --head",
            "export RAY_AUTH_MODE=disabled; ulimit -n 65536;\n    ray start --head",
            "token auth switched off",
        ),
        (
            '"~/.rnnsweep/ray-auth": "~/.rnnsweep/ray-auth"',
            '"~/elsewhere": "~/elsewhere"',
            "not in a file_mounts directory",
        ),
        ('head:\n    resources: {"CPU": 0}', 'head:\n    resources: {"CPU": 4}', "the head advertises CPUs"),
        (
            "  gpu:\n    min_workers: 1\n    max_workers: 4",
            "  gpu:\n    min_workers: 5\n    max_workers: 4",
            "min_workers 5 > max_workers 4",
        ),
        ("cluster_name: rnnsweep", "cluster_name: rnnsweep\nworker_nodes_count: 3", "ray-schema.json"),
        ("\nmax_workers: 8\n", "\nmax_workers: -1\n", "ray-schema.json"),
    ],
)
def test_the_aws_rules_catch_a_broken_config(deploy_copy, old, new, expected):
    edit(deploy_copy / AWS_CONFIG, old, new)
    problems = aws_problems(deploy_copy / AWS_CONFIG)
    assert any(expected in p for p in problems), problems


def test_a_node_type_with_its_own_setup_commands_must_set_auth_too(deploy_copy):
    edit(
        deploy_copy / AWS_CONFIG,
        "  gpu_spot:\n    min_workers: 0",
        "  gpu_spot:\n    worker_setup_commands: []\n    min_workers: 0",
    )
    assert any("worker type gpu_spot" in p for p in aws_problems(deploy_copy / AWS_CONFIG))


RAYCLUSTER = f"{KUBERAY}/raycluster.yaml"
RAYJOB = f"{KUBERAY}/rayjob.yaml"


@pytest.mark.parametrize(
    "file, old, new, expected",
    [
        (RAYCLUSTER, 'num-cpus: "0"', 'num-cpus: "0"\n      dashboard-host: "0.0.0.0"', "dashboard-host 0.0.0.0"),
        (RAYCLUSTER, "serviceType: ClusterIP", "serviceType: LoadBalancer", "use ClusterIP"),
        (
            RAYCLUSTER,
            "                - name: RAY_AUTH_TOKEN\n                  valueFrom:\n                    secretKeyRef:\n                      name: rnnsweep-ray-auth\n                      key: auth_token\n",
            "                - name: RAY_AUTH_TOKEN\n                  value: REPLACE_WITH_TOKEN\n",
            "worker group gpu container ray-worker: RAY_AUTH_TOKEN must come from a secretKeyRef",
        ),
        (
            RAYCLUSTER,
            "              - name: RAY_AUTH_MODE\n                value: token\n",
            "",
            "head container ray-head: RAY_AUTH_MODE",
        ),
        (
            RAYCLUSTER,
            "    env:\n      - name: RAY_AUTH_MODE",
            "    env:\n      - name: RAY_AUTH_MOD",
            "autoscaler: RAY_AUTH_MODE",
        ),
        (
            RAYCLUSTER,
            '16Gi, nvidia.com/gpu: 1}\n                limits: {cpu: "4", memory: 16Gi, nvidia.com/gpu: 1}',
            '16Gi}\n                limits: {cpu: "4", memory: 16Gi}',
            "requests no nvidia.com/gpu",
        ),
        (
            RAYCLUSTER,
            "minReplicas: 1\n      maxReplicas: 8",
            "minReplicas: 9\n      maxReplicas: 8",
            "minReplicas <= replicas <= maxReplicas",
        ),
        (RAYCLUSTER, 'rayVersion: "2.60.0"', 'rayVersion: "2.51.0"', "must be >= 2.52"),
        (RAYCLUSTER, "metadata:\n  name: rnnsweep\n", "metadata:\n  name: RNNsweep\n", "DNS-1035"),
        (RAYJOB, "entrypoint: rnnsweep submit", "entrypoint: python train.py #", "does not run `rnnsweep submit`"),
        (
            RAYJOB,
            "shutdownAfterJobFinishes: true",
            "shutdownAfterJobFinishes: false",
            "shutdownAfterJobFinishes is off",
        ),
        (RAYJOB, "      restartPolicy: Never\n", "", "restartPolicy must be Never"),
        (
            RAYJOB,
            "            - name: RAY_AUTH_TOKEN\n              valueFrom:\n                secretKeyRef:\n                  name: rnnsweep-ray-auth\n                  key: auth_token\n",
            "",
            "submitter container ray-job-submitter: RAY_AUTH_TOKEN",
        ),
        (
            f"{KUBERAY}/secret-example.yaml",
            "auth_token: REPLACE_WITH_OUTPUT_OF_ray_get-auth-token",
            "auth_token: hunter2hunter2",
            "holds a value",
        ),
        (f"{KUBERAY}/grid-configmap.yaml", "kind: ConfigMap", "kind: Deployment", "unexpected v1 Deployment"),
    ],
)
def test_the_kuberay_rules_catch_a_broken_manifest(deploy_copy, file, old, new, expected):
    edit(deploy_copy / file, old, new)
    problems = kuberay_problems(deploy_copy / KUBERAY)
    assert any(expected in p for p in problems), problems


def test_a_load_balancer_service_is_caught(deploy_copy):
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "ray-dashboard"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 8265}]},
    }
    (deploy_copy / KUBERAY / "dashboard.yaml").write_text(yaml.safe_dump(service))
    assert any("LoadBalancer Service exposes Ray" in p for p in kuberay_problems(deploy_copy / KUBERAY))


def random_key_material(length: int) -> str:
    rng = secrets.SystemRandom()
    pool = string.ascii_letters + string.digits
    return "".join(rng.choice(pool) for _ in range(length - 3)) + "aZ9"


@pytest.mark.parametrize(
    "file, make_line, expected",
    [
        ("README.md", lambda: f"export RAY_AUTH_TOKEN={fake_token()}\n", "64-hex-digit"),
        ("README.md", lambda: f"token = {fake_token()[:40]}\n", "looks like a real secret"),
        (
            AWS_CONFIG,
            lambda: f"# aws_access_key_id = AKIA{random_key_material(16).upper()[:16]}\n",
            "AWS access key id",
        ),
        (
            AWS_CONFIG,
            lambda: f"# aws_secret_access_key = {random_key_material(40)}\n",
            "aws_secret_access_key with a value",
        ),
        ("Dockerfile", lambda: f'ENV API_KEY="{random_key_material(32)}"\n', "looks like a real secret"),
        (
            f"{KUBERAY}/secret-example.yaml",
            lambda: "    - name: RAY_AUTH_TOKEN\n      value: opensesame\n",
            "env RAY_AUTH_TOKEN has a literal value",
        ),
        ("notes.txt", lambda: "-----BEGIN OPENSSH PRIVATE KEY-----\n", "private key block"),
    ],
)
def test_the_secret_scan_catches_a_planted_secret(deploy_copy, file, make_line, expected):
    path = deploy_copy / file
    path.write_text((path.read_text() if path.exists() else "") + make_line())
    problems = secret_problems(deploy_copy)
    assert any(expected in p for p in problems), problems


def test_the_secret_scan_leaves_placeholders_and_shell_references_alone(tmp_path):
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "ok.md").write_text(
        "auth_token: REPLACE_WITH_OUTPUT_OF_ray_get-auth-token\n"
        'kubectl create secret generic x --from-literal=auth_token="$(ray get-auth-token)"\n'
        "AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY\n"
        "secretName: rnnsweep-ray-auth\n"
        "- name: RAY_AUTH_TOKEN_PATH\n  value: /home/ray/.rnnsweep/ray-auth/auth_token\n"
        f"FROM python:3.12@sha256:{'0' * 64}\n"
    )
    assert secret_problems(tmp_path / "deploy") == []


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("USER ray", "USER ray\nUSER root", "USER <non-root user>"),
        ("USER ray\n", "", "USER <non-root user>"),
        (
            "\nFROM pytorch/pytorch:2.13.0-cuda12.6-cudnn9-runtime\n",
            "\nFROM pytorch/pytorch:latest\n",
            "pin the base image",
        ),
        ("\nFROM pytorch/pytorch:2.13.0-cuda12.6-cudnn9-runtime\n", "\nFROM pytorch/pytorch\n", "pin the base image"),
        ('"boto3>=1.34" . \\', '"boto3>=1.34" \\', "the project itself is not installed"),
        ("COPY jobs ./jobs\n", "", "jobs: named in pyproject.toml but not copied"),
        ("ARG RAY_VERSION=2.60.0", "ARG RAY_VERSION=2.47.1", "Ray >= 2.52"),
        (
            "ENV PYTHONDONTWRITEBYTECODE=1",
            "ENV RAY_AUTH_TOKEN=abc PYTHONDONTWRITEBYTECODE=1",
            "ENV RAY_AUTH_TOKEN: secrets must not be baked",
        ),
    ],
)
def test_the_dockerfile_rules_catch_a_broken_dockerfile(deploy_copy, old, new, expected):
    edit(deploy_copy / "Dockerfile", old, new)
    problems = dockerfile_problems(deploy_copy / "Dockerfile", ROOT / "pyproject.toml")
    assert any(expected in p for p in problems), problems


def test_the_build_context_allow_list_must_let_every_package_in(deploy_copy):
    edit(deploy_copy / "Dockerfile.dockerignore", "!analysis\n", "")
    problems = dockerfile_problems(deploy_copy / "Dockerfile", ROOT / "pyproject.toml")
    assert any("analysis is not let into the build context" in p for p in problems), problems
