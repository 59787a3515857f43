"""ops/k8s: every manifest the kustomization lists is valid against the Kubernetes API's
published JSON schemas (kubernetes-validate bundles them; strict: no unknown fields), and the
manifests agree with the service: its probes, port, environment names, secrets, volumes."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from app.settings import Settings

K8S = Path(__file__).resolve().parents[2] / "ops" / "k8s"
VERSION = "1.30.0"  # the oldest release still in the schemas this library bundles that we check


def kustomization() -> dict:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def documents() -> list[dict]:
    return [
        doc
        for name in kustomization()["resources"]
        for doc in yaml.safe_load_all((K8S / name).read_text())
        if doc
    ]


def by_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in documents() if d["kind"] == kind}


def test_the_kustomization_lists_every_manifest_in_the_directory():
    listed = set(kustomization()["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


@pytest.mark.parametrize("version", [VERSION, kubernetes_validate.latest_version()])
def test_every_manifest_is_valid_against_the_kubernetes_schemas(version):
    docs = documents()
    assert {d["kind"] for d in docs} >= {
        "Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler",
        "PersistentVolumeClaim", "StatefulSet", "Job", "Secret", "Namespace",
    }  # fmt: skip
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)  # raises, naming the field


def test_a_wrong_field_is_caught():
    """The check itself can fail: a misspelt field and a wrong type are refused."""
    api = by_kind("Deployment")["recsys-api"]
    broken = yaml.safe_load(yaml.safe_dump(api))
    broken["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)
    broken = yaml.safe_load(yaml.safe_dump(api))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)


def containers() -> list[dict]:
    pods = [d["spec"]["template"]["spec"] for d in documents() if "template" in d.get("spec", {})]
    return [c for pod in pods for c in pod["containers"]]


def test_the_api_pod_probes_serves_and_mounts_as_the_service_expects():
    api = by_kind("Deployment")["recsys-api"]
    pod = api["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["ports"][0]["containerPort"] == int(env["RECSYS_PORT"]["value"])
    models = next(m for m in container["volumeMounts"] if m["name"] == "models")
    assert models["readOnly"] is True and models["mountPath"] == env["RECSYS_MODELS_DIR"]["value"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's user (Dockerfile)
    assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}  # read-only root
    # The PodDisruptionBudget, the autoscaler and the Service select or target this Deployment.
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert by_kind("PodDisruptionBudget")["recsys-api"]["spec"]["selector"]["matchLabels"] == labels
    assert by_kind("Service")["recsys-api"]["spec"]["selector"] == labels
    assert by_kind("HorizontalPodAutoscaler")["recsys-api"]["spec"]["scaleTargetRef"]["name"] == (
        "recsys-api"
    )


def test_every_environment_name_is_a_setting_and_every_secret_key_exists():
    settings = {f"RECSYS_{name.upper()}" for name in Settings.model_fields}
    secrets = {name: set(s["stringData"]) for name, s in by_kind("Secret").items()}
    for container in containers():
        for var in container.get("env", []):
            if var["name"].startswith("RECSYS_") and container["name"] == "api":
                assert var["name"] in settings, var["name"]
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in secrets[ref["name"]], ref


def test_the_store_url_names_the_postgres_service_and_its_password():
    secret = by_kind("Secret")["recsys"]["stringData"]
    url = re.match(r"postgresql://(\w+):([^@]+)@([\w-]+):(\d+)/(\w+)", secret["store-url"])
    assert url is not None
    user, password, host, port, db = url.groups()
    assert password == secret["postgres-password"]
    assert host in by_kind("Service") and by_kind("StatefulSet")[host]
    assert int(port) == by_kind("Service")[host]["spec"]["ports"][0]["port"]
    postgres_env = {
        e["name"]: e.get("value") for e in by_kind("StatefulSet")[host]["spec"]["template"]["spec"]
        ["containers"][0]["env"]
    }  # fmt: skip
    assert (postgres_env["POSTGRES_USER"], postgres_env["POSTGRES_DB"]) == (user, db)


def test_the_writers_of_the_models_volume_mount_it_writable_and_the_claim_is_shared():
    claim = by_kind("PersistentVolumeClaim")["recsys-models"]
    assert "ReadWriteMany" in claim["spec"]["accessModes"]
    for kind, name in (("Job", "recsys-train"), ("Deployment", "recsys-retrain")):
        (container,) = by_kind(kind)[name]["spec"]["template"]["spec"]["containers"]
        models = next(m for m in container["volumeMounts"] if m["name"] == "models")
        assert not models.get("readOnly", False) and models["mountPath"] == "/models"
