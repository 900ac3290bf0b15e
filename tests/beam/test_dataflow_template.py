"""The Dataflow path: what Terraform launches (terraform/10-dataflow.tf) parses with the job's
own parser, and the template declares every parameter it is given (HCL read with python-hcl2;
no provider can be downloaded here, so nothing is planned)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import hcl2
from apache_beam.options.pipeline_options import StandardOptions
from edp_stream_load.options import REPLAY_HORIZON_S, StreamLoadOptions, dataflow_argv, parse

REPO = Path(__file__).resolve().parents[2]
DATAFLOW_TF = REPO / "terraform" / "10-dataflow.tf"
DATAFLOW_DOCKERFILE = (REPO / "beam" / "dataflow.Dockerfile").read_text(encoding="utf-8")


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals."""
    if isinstance(value, str):
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    return value


def _tf() -> dict[str, Any]:
    with DATAFLOW_TF.open(encoding="utf-8") as fh:
        return _unquote(hcl2.load(fh))  # type: ignore[no-any-return]


def _locals() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in _tf()["locals"]:
        merged.update(block)
    return merged


def _resource(rtype: str, name: str) -> dict[str, Any]:
    for block in _tf()["resource"]:
        if rtype in block and name in block[rtype]:
            return block[rtype][name]  # type: ignore[no-any-return]
    raise AssertionError(f"{rtype}.{name} missing")


def _launch_argv() -> list[str]:
    """The flags the Flex Template launcher hands the job (``--name=value`` per parameter),
    interpolations replaced by what they resolve to."""
    params = _locals()["dataflow_parameters"]
    values = {
        "subscription": "projects/edp-proj/subscriptions/events-loader",
        "allowed_lateness_seconds": str(REPLAY_HORIZON_S),
        "bigquery_expansion_service": _locals()["bigquery_xlang"],
    }
    argv = ["--runner=DataflowRunner", "--project=edp-proj", "--region=asia-northeast3"]
    for name, value in params.items():
        text = values.get(name, value)
        assert "${" not in text, f"{name} left unresolved in the test"
        argv.append(f"--{name}={text}")
    return argv


def test_the_template_launch_parses_with_the_jobs_own_parser() -> None:
    options = parse(_launch_argv())
    ours = options.view_as(StreamLoadOptions)
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    assert ours.sink == "bigquery"
    assert ours.allowed_lateness_seconds == REPLAY_HORIZON_S
    # The expansion jar the launcher starts is the one the Dataflow image bakes.
    assert ours.bigquery_expansion_service in DATAFLOW_DOCKERFILE.replace("\\\n", " ")
    assert ours.bigquery_expansion_service == next(
        a.split("=", 1)[1]
        for a in dataflow_argv(project="p", region="r", subscription="s", temp_location="t",
                               image="i")
        if a.startswith("--bigquery_expansion_service=")
    )  # fmt: skip


def test_every_parameter_is_declared_in_the_template_metadata() -> None:
    spec = _locals()["flex_template_spec"]
    declared = spec["metadata"]["parameters"]
    # The declaration is generated from the parameter map itself (a for expression).
    assert "keys(local.dataflow_parameters)" in str(declared)
    assert spec["sdkInfo"] == {"language": "PYTHON"}


def test_the_job_runs_as_its_own_account_in_the_private_subnet() -> None:
    job = _resource("google_dataflow_flex_template_job", "stream_load")
    assert "google_service_account.dataflow[0].email" in job["service_account_email"]
    assert job["ip_configuration"] == "WORKER_IP_PRIVATE"
    assert job["enable_streaming_engine"] is True
    assert job["on_delete"] == "drain"
    assert job["sdk_container_image"] == "${local.dataflow_image}"
    assert job["container_spec_gcs_path"].startswith("gs://${google_storage_bucket.dataflow[0]")
    api = _resource("google_project_service", "dataflow")
    assert api["service"] == "dataflow.googleapis.com"
    roles = _locals()["dataflow_roles"]
    assert "roles/dataflow.worker" in roles
    assert not any(re.search(r"roles/(owner|editor)$", r) for r in roles)


def test_the_dataflow_image_is_launcher_and_worker_and_keeps_root() -> None:
    lines = [ln.strip() for ln in DATAFLOW_DOCKERFILE.splitlines()]
    assert not any(ln.upper().startswith("USER ") for ln in lines)  # Dataflow expects root
    assert "FLEX_TEMPLATE_PYTHON_PY_FILE=/template/flex_template.py" in DATAFLOW_DOCKERFILE
    assert 'ENTRYPOINT ["/opt/apache/beam/boot"]' in lines
    assert (REPO / "beam" / "flex_template.py").exists()
