"""Static checks of gke/: every overlay renders with kustomize, validates against the Kubernetes
schemas of the target version, passes checkov, and keeps the platform's operational figures
(HPA 2 -> 10 on CPU 70 % and 1,000 RPS per pod, Debezium single replica with 60 s grace, Flink on
the tainted spot pool with the Beam worker-pool sidecar)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# GKE's REGULAR channel version the manifests target.
KUBERNETES_VERSION = "1.33"
# Custom resources have no schema in kubernetes-validate; they are checked structurally below.
CUSTOM_KINDS = {"FlinkDeployment", "PodMonitoring", "SecretProviderClass"}


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def test_overlays_render(rendered_overlays: dict[str, Path]) -> None:
    assert set(rendered_overlays) >= {"dev", "prod"}
    for path in rendered_overlays.values():
        kinds = {d["kind"] for d in _docs(path)}
        assert {
            "Deployment",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "FlinkDeployment",
            "Job",
        } <= kinds


def test_manifests_validate_against_kubernetes_schemas(
    rendered_overlays: dict[str, Path], infra_bin: Path, tmp_path: Path
) -> None:
    for env, path in rendered_overlays.items():
        builtin = [d for d in _docs(path) if d["kind"] not in CUSTOM_KINDS]
        target = tmp_path / f"{env}-builtin.yaml"
        target.write_text(yaml.safe_dump_all(builtin), encoding="utf-8")
        result = subprocess.run(
            [
                str(infra_bin / "kubernetes-validate"),
                "-k",
                KUBERNETES_VERSION,
                "--strict",
                "--quiet",
                str(target),
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{env}:\n{result.stdout}\n{result.stderr}"


def _checkov(infra_bin: Path, args: list[str]) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(infra_bin / "checkov"), *args, "--skip-download", "-o", "json"],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    report = json.loads(result.stdout)
    return report if isinstance(report, list) else [report]


def _assert_clean(reports: list[dict[str, Any]]) -> None:
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, "\n".join(failed)
    passed = sum(r["summary"]["passed"] for r in reports)
    assert passed > 0, f"checkov checked nothing: {reports}"


def test_checkov_rendered_manifests(rendered_overlays: dict[str, Path], infra_bin: Path) -> None:
    files = [arg for p in rendered_overlays.values() for arg in ("-f", str(p))]
    _assert_clean(_checkov(infra_bin, ["--config-file", "gke/.checkov.yaml", *files]))


def test_checkov_skip_list_is_short_and_justified() -> None:
    config_text = (ROOT / "gke" / ".checkov.yaml").read_text(encoding="utf-8")
    skips = yaml.safe_load(config_text)["skip-check"]
    assert len(skips) <= 3
    for check in skips:
        # A comment block right above the entry says why.
        before = config_text.split(f"- {check}")[0].rstrip().splitlines()[-1]
        assert before.strip().startswith("#"), f"{check} has no justification"


def test_checkov_dockerfiles(infra_bin: Path) -> None:
    _assert_clean(_checkov(infra_bin, ["-d", "gke/images", "--framework", "dockerfile"]))


def test_collector_autoscaling_matches_the_requirements(rendered_overlays: dict[str, Path]) -> None:
    docs = _docs(rendered_overlays["prod"])
    hpa = _one(docs, "HorizontalPodAutoscaler", "event-collector")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
    metrics = {m["type"]: m for m in hpa["metrics"]}
    assert metrics["Resource"]["resource"]["target"]["averageUtilization"] == 70
    assert metrics["Pods"]["pods"]["target"]["averageValue"] == "1000"
    up, down = hpa["behavior"]["scaleUp"], hpa["behavior"]["scaleDown"]
    assert up["stabilizationWindowSeconds"] == 60
    assert up["policies"] == [{"type": "Pods", "value": 2, "periodSeconds": 60}]
    assert down["stabilizationWindowSeconds"] == 300

    pod = _one(docs, "Deployment", "event-collector")["spec"]["template"]["spec"]
    assert pod["affinity"]["podAntiAffinity"]
    container = pod["containers"][0]
    assert {"readinessProbe", "livenessProbe"} <= set(container)
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    _one(docs, "PodDisruptionBudget", "event-collector")


def test_debezium_is_a_single_recreated_replica(rendered_overlays: dict[str, Path]) -> None:
    docs = _docs(rendered_overlays["prod"])
    deployment = _one(docs, "Deployment", "debezium-server")["spec"]
    assert deployment["replicas"] == 1
    assert deployment["strategy"]["type"] == "Recreate"
    assert deployment["template"]["spec"]["terminationGracePeriodSeconds"] == 60
    pdb = _one(docs, "PodDisruptionBudget", "debezium-server")["spec"]
    assert pdb["maxUnavailable"] == 0
    config = next(
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("debezium-config")
    )
    assert "debezium.sink.type=pubsub" in config["data"]["application.properties"]


def test_beam_runs_on_the_spot_pool_with_the_sdk_worker_pool(
    rendered_overlays: dict[str, Path],
) -> None:
    docs = _docs(rendered_overlays["prod"])
    flink = _one(docs, "FlinkDeployment", "edp-stream-load")["spec"]
    tolerations = flink["podTemplate"]["spec"]["tolerations"]
    assert {
        "key": "workload",
        "operator": "Equal",
        "value": "pipeline",
        "effect": "NoSchedule",
    } in tolerations
    assert flink["podTemplate"]["spec"]["nodeSelector"] == {
        "cloud.google.com/gke-nodepool": "pipeline"
    }
    sidecar = flink["taskManagerPodTemplate"]["spec"]["containers"][0]
    assert sidecar["args"] == ["--worker_pool"]
    assert sidecar["ports"][0]["containerPort"] == 50000
    assert flink["flinkConfiguration"]["execution.checkpointing.interval"]
    job = _one(docs, "Job", "edp-stream-load-submit")["spec"]["template"]["spec"]
    args = job["containers"][0]["args"]
    assert "--environment_type=EXTERNAL" in args
    assert "--environment_config=localhost:50000" in args


@pytest.mark.parametrize(
    "dockerfile", sorted((ROOT / "gke" / "images").glob("*.Dockerfile")), ids=lambda p: p.name
)
def test_dockerfiles_are_multistage_nonroot_and_pinned(dockerfile: Path) -> None:
    lines = [ln.strip() for ln in dockerfile.read_text(encoding="utf-8").splitlines()]
    froms = [ln for ln in lines if ln.upper().startswith("FROM ")]
    assert len(froms) >= 2, "multi-stage"
    for line in froms:
        image = line.split()[1]
        if image in {"wheels", "jars", "build"} or image.startswith("${"):
            continue
        assert ":" in image and not image.endswith(":latest"), f"unpinned base {image}"
    users = [ln for ln in lines if ln.upper().startswith("USER ")]
    assert users and all("root" not in u and not u.endswith(" 0") for u in users)
