"""Static checks of terraform/: we cannot `terraform init` here (no Google provider can be
downloaded), so the configuration is parsed and checked against the code it deploys.

- formatting (`terraform fmt -check`) and HCL parsing (python-hcl2);
- every variable described and typed; defaults equal the code's settings defaults;
- one schema definition: tables come from schemas/, nothing in terraform/ declares fields;
- every env var given to a function is a Settings field and validates;
- every entry point exists in functions/main.py;
- Pub/Sub resources equal edp.bus.topology;
- every service account has exactly the roles its code needs;
- checkov: zero failed checks (justified inline skips only).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from edp.bus.topology import build_topology
from edp.contracts.catalog import load_catalog
from edp.settings import Settings

from .hcl import (
    ROOT,
    TF,
    _blocks,
    _load,
    _locals,
    _members,
    _resources,
    _role_lists,
    _text,
    _tf_files,
    _unq,
    _variable_defaults,
)

# --- formatting and parsing --------------------------------------------------------------------


def test_terraform_fmt_is_clean() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed on this machine")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TF)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}"


@pytest.mark.parametrize("path", _tf_files(), ids=lambda p: str(p.relative_to(TF)))
def test_every_file_parses(path: Path) -> None:
    assert isinstance(_load(path), dict)


def test_every_variable_is_described_and_typed() -> None:
    for directory in [TF, *sorted((TF / "modules").iterdir())]:
        for name, body in _blocks("variable", directory / "variables.tf"):
            assert _unq(str(body.get("description", ""))).strip(), f"{directory.name}: {name}"
            assert "type" in body, f"{directory.name}: variable {name} has no type"


def test_every_output_is_described() -> None:
    for name, body in _blocks("output", TF / "outputs.tf"):
        assert _unq(str(body.get("description", ""))).strip(), name


def test_variable_defaults_equal_settings_defaults() -> None:
    defaults = _variable_defaults()
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    expected = {
        "region": s.region,
        "bigquery_location": s.bigquery_location,
        "maximum_bytes_billed": s.maximum_bytes_billed,
        "cors_origins": s.cors_origins,
        "datasets.raw": s.dataset_raw,
        "datasets.staging": s.dataset_staging,
        "datasets.mart": s.dataset_mart,
        "datasets.monitoring": s.dataset_monitoring,
        "pubsub.topic_events": s.topic_events,
        "pubsub.topic_bad_events": s.topic_bad_events,
        "pubsub.topic_events_dead_letter": s.topic_events_dead_letter,
        "pubsub.subscription_events_loader": s.subscription_events_loader,
        "pubsub.subscription_bad_events_archive": s.subscription_bad_events_archive,
        "pubsub.cdc_topic_prefix": s.cdc_topic_prefix,
        "pubsub.cdc_subscription_prefix": s.cdc_subscription_prefix,
        "pubsub.cdc_dead_letter_topic": s.cdc_dead_letter_topic,
        "pubsub.max_delivery_attempts": s.max_delivery_attempts,
    }
    actual = {}
    for key in expected:
        value = defaults[key]
        if isinstance(value, str):
            value = _unq(value)
        if isinstance(value, list):
            value = [_unq(v) for v in value]
        actual[key] = value
    assert actual == expected


# --- one schema definition ---------------------------------------------------------------------


def test_tables_come_from_schemas_folder() -> None:
    table = _resources("google_bigquery_table")["table"]
    assert "local.tables" in str(table["for_each"])
    assert re.search(r"file\(.*schemas/bigquery/", str(table["schema"])), table["schema"]
    assert 'fileset(local.schemas_dir, "*/*.yaml")' in _locals()["tables"]
    assert "schemas/tables" in _locals()["schemas_dir"]


def test_exactly_one_definition_of_each_table_schema() -> None:
    # Terraform reads schemas/ and declares no field itself ...
    for path in _tf_files():
        text = path.read_text(encoding="utf-8")
        assert "jsonencode([" not in text and '"mode"' not in text, path
    for path in TF.rglob("*.json"):
        assert '"mode"' not in path.read_text(encoding="utf-8"), f"field list in {path}"
    # ... and every catalogue table has exactly one YAML and one generated field list.
    for table in load_catalog():
        yaml_files = list((ROOT / "schemas" / "tables").glob(f"{table.dataset}/{table.name}.yaml"))
        assert len(yaml_files) == 1, table.ref
        generated = ROOT / "schemas" / "bigquery" / table.dataset / f"{table.name}.json"
        assert generated.exists(), f"{generated} missing: run `edp schemas build`"
        fields = json.loads(generated.read_text(encoding="utf-8"))
        assert [f["name"] for f in fields] == list(table.column_names), table.ref


def test_every_partitioned_table_keeps_its_metadata_in_terraform() -> None:
    body = _resources("google_bigquery_table")["table"]
    assert "partitioning.require_partition_filter" in str(body["require_partition_filter"])
    partitioning = str(body["dynamic"])
    assert "expiration_days" in partitioning and "field" in partitioning
    assert "clustering" in str(body["clustering"])


# --- functions ---------------------------------------------------------------------------------


def _function_env_names() -> dict[str, set[str]]:
    locals_ = _locals()
    common = set(locals_["common_env"])
    return {
        name: common | set(body.get("env", {})) | set(body.get("secrets", {}))
        for name, body in locals_["functions"].items()
    }


def _settings_env_names() -> set[str]:
    names: set[str] = set()
    for field_name, info in Settings.model_fields.items():
        names.add(f"EDP_{field_name.upper()}")
        alias = info.validation_alias
        choices = getattr(alias, "choices", None)
        if choices:
            names.update(str(c) for c in choices)
    return names


def test_functions_are_ingest_cdc_flush_etl() -> None:
    assert set(_function_env_names()) >= {"ingest", "cdc_flush", "etl"}


def test_every_function_env_var_is_a_setting() -> None:
    known = _settings_env_names()
    for function, names in _function_env_names().items():
        unknown = names - known
        assert not unknown, f"{function} gets env vars no setting reads: {sorted(unknown)}"


def test_literal_function_env_values_validate() -> None:
    literals = {
        name: _unq(value) for name, value in _locals()["common_env"].items() if "${" not in value
    }
    assert literals["EDP_WAREHOUSE"] == "bigquery"
    settings = Settings(
        _env_file=None,
        **{  # type: ignore[call-arg]
            _field_for_env(name): value for name, value in literals.items()
        },
    )
    assert settings.warehouse == "bigquery"
    assert settings.metrics_exporter == "cloud_monitoring"


def _field_for_env(env_name: str) -> str:
    for field_name, info in Settings.model_fields.items():
        choices = getattr(info.validation_alias, "choices", None) or []
        if env_name == f"EDP_{field_name.upper()}" or env_name in choices:
            return field_name
    raise AssertionError(f"no setting reads {env_name}")


def test_every_entry_point_exists_in_main() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("functions_main", ROOT / "functions" / "main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    entry_points = [_unq(f["entry_point"]) for f in _locals()["functions"].values()]
    assert entry_points, "no functions declared"
    for name in entry_points:
        assert callable(getattr(module, name, None)), f"functions/main.py has no {name}()"


def test_function_requirements_are_the_locked_runtime_closure() -> None:
    """Cloud Run installs functions/requirements.txt: exactly the runtime dependencies and their
    dependencies, pinned as uv.lock resolves them (``nox -s requirements`` writes it)."""
    import shutil
    import tomllib

    uv = shutil.which("uv")
    assert uv, "uv is installed with nox (README): it reads uv.lock"
    exported = subprocess.run(
        [uv, "export", "--frozen", "--no-hashes", "--no-emit-project", "--no-dev", "--quiet"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pins = sorted(_pins(exported))
    lines = (ROOT / "functions" / "requirements.txt").read_text(encoding="utf-8")
    assert sorted(_pins(lines)) == pins, "run `nox -s requirements` after changing dependencies"
    # every direct runtime dependency is pinned exactly, at a version its specifier admits
    from packaging.requirements import Requirement

    locked = dict(p.split("==", 1) for p in pins)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for text in project["dependencies"]:
        req = Requirement(text)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in locked, f"{req.name} is not in the locked runtime set"
        assert req.specifier.contains(locked[name], prereleases=True)


def _pins(text: str) -> list[str]:
    """``name==version`` lines (normalised names; markers dropped) of a requirements text."""
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line!r}"
            out.append(f"{re.sub(r'[-_.]+', '-', name).lower()}=={version.strip()}")
    return out


# --- Pub/Sub -----------------------------------------------------------------------------------

_SUB_ENTRY = re.compile(
    r'([\w-]+|"[^"]+") =>? \{topic = "([^"]+)", name = ([^,]+), dead_letter = ([^,]+), '
    r"ordering = (\w+), ack_deadline = (\d+)\}"
)


def _resolve(expr: str, defaults: dict[str, Any], table: str | None = None) -> str:
    expr = _unq(expr.strip())

    def var(match: re.Match[str]) -> str:
        return str(defaults[f"pubsub.{match.group(1)}"])

    expr = re.sub(r"\$\{var\.pubsub\.(\w+)\}", var, expr)
    expr = re.sub(r"^var\.pubsub\.(\w+)$", var, expr)
    if table is not None:
        expr = expr.replace("${t}", table)
    return expr


def test_pubsub_resources_equal_the_code_topology() -> None:
    defaults = _variable_defaults()
    locals_ = _locals()
    tables = list(load_catalog().cdc_sources())

    tf_subs: dict[str, dict[str, Any]] = {}
    for key, topic, name, dead_letter, ordering, ack in _SUB_ENTRY.findall(
        locals_["subscriptions"]
    ):
        for table in tables if "${t}" in key else [None]:
            tf_subs[_resolve(key, defaults, table)] = {
                "topic": _resolve(topic, defaults, table),
                "name": _resolve(name, defaults, table),
                "dead_letter": None if dead_letter == "null" else _unq(dead_letter),
                "ordering": ordering == "true",
                "ack": int(ack),
            }
    topology = build_topology(Settings(_env_file=None))  # type: ignore[call-arg]
    code_subs = {
        s.key: {
            "topic": s.topic,
            "name": s.name,
            "dead_letter": s.dead_letter.topic if s.dead_letter else None,
            "ordering": s.ordering,
            "ack": s.ack_deadline_s,
        }
        for s in topology.subscriptions
    }
    assert tf_subs == code_subs

    tf_topic_keys = set(re.findall(r"([\w-]+) = var\.pubsub\.\w+", locals_["topics"]))
    tf_topic_keys |= {f"cdc:{t}" for t in tables}
    assert tf_topic_keys == {t.key for t in topology.topics}
    assert '"${var.pubsub.cdc_topic_prefix}.${t}"' in locals_["cdc_topics"]
    for table in tables:
        assert (
            topology.topic(f"cdc:{table}").name == f"{defaults['pubsub.cdc_topic_prefix']}.{table}"
        )


# --- IAM ---------------------------------------------------------------------------------------

# The roles each workload's code needs, and on what. Changing a grant means changing this table
# in the same commit, with the reason.
DATASET_LAYERS = ("raw", "staging", "mart", "monitoring")
EXPECTED_GRANTS: set[tuple[str, str, str]] = {
    # ingest / collector: publish accepted and refused events, read the write keys, emit metrics.
    ("ingest", "roles/pubsub.publisher", "topic:events"),
    ("ingest", "roles/pubsub.publisher", "topic:events-bad"),
    ("ingest", "roles/secretmanager.secretAccessor", "secret:ingest-write-keys"),
    ("ingest", "roles/monitoring.metricWriter", "project"),
    ("ingest", "roles/cloudtrace.agent", "project"),
    ("ingest", "roles/logging.logWriter", "project"),
    ("collector", "roles/pubsub.publisher", "topic:events"),
    ("collector", "roles/pubsub.publisher", "topic:events-bad"),
    ("collector", "roles/secretmanager.secretAccessor", "secret:ingest-write-keys"),
    ("collector", "roles/monitoring.metricWriter", "project"),
    # the collector now traces like the ingest function (EDP_TRACES_EXPORTER in its config map)
    ("collector", "roles/cloudtrace.agent", "project"),
    # cdc_flush: pull the CDC subscriptions, park poison messages, write raw.cdc_*.
    *{
        ("cdc-flush", role, f"subscription:cdc-flush:{t}")
        for t in ("shop.orders", "shop.order_items", "shop.inventory", "shop.shipments")
        for role in ("roles/pubsub.subscriber", "roles/pubsub.viewer")
    },
    ("cdc-flush", "roles/pubsub.publisher", "topic:cdc-dead-letter"),
    ("cdc-flush", "roles/bigquery.dataEditor", "dataset:raw"),
    ("cdc-flush", "roles/bigquery.dataEditor", "dataset:staging"),
    ("cdc-flush", "roles/bigquery.jobUser", "project"),
    ("cdc-flush", "roles/monitoring.metricWriter", "project"),
    ("cdc-flush", "roles/cloudtrace.agent", "project"),
    ("cdc-flush", "roles/logging.logWriter", "project"),
    # etl: read raw, rewrite staging/mart partitions, record runs.
    ("etl", "roles/bigquery.dataViewer", "dataset:raw"),
    ("etl", "roles/bigquery.dataEditor", "dataset:staging"),
    ("etl", "roles/bigquery.dataEditor", "dataset:mart"),
    ("etl", "roles/bigquery.dataEditor", "dataset:monitoring"),
    ("etl", "roles/bigquery.jobUser", "project"),
    ("etl", "roles/monitoring.metricWriter", "project"),
    ("etl", "roles/cloudtrace.agent", "project"),
    ("etl", "roles/logging.logWriter", "project"),
    # sql_review: dry runs (read every layer), the project's job history, metrics, Slack.
    *{("sql-review", "roles/bigquery.dataViewer", f"dataset:{d}") for d in DATASET_LAYERS},
    ("sql-review", "roles/bigquery.jobUser", "project"),
    ("sql-review", "roles/bigquery.resourceViewer", "project"),
    ("sql-review", "roles/monitoring.metricWriter", "project"),
    ("sql-review", "roles/logging.logWriter", "project"),
    ("sql-review", "roles/secretmanager.secretAccessor", "secret:slack-webhook-warning"),
    ("scheduler", "roles/run.invoker", "function:sql_review"),
    # orchestration: the workflow calls etl; the scheduler starts the workflow and cdc_flush.
    ("workflows", "roles/run.invoker", "function:etl"),
    ("workflows", "roles/logging.logWriter", "project"),
    ("scheduler", "roles/workflows.invoker", "project"),
    ("scheduler", "roles/run.invoker", "function:cdc_flush"),
    # quality_check: read every layer, write its monitoring tables, Gemini, its Slack webhooks;
    # the scheduler calls it every 30 minutes.
    ("quality", "roles/bigquery.dataViewer", "dataset:raw"),
    ("quality", "roles/bigquery.dataViewer", "dataset:staging"),
    ("quality", "roles/bigquery.dataViewer", "dataset:mart"),
    ("quality", "roles/bigquery.dataEditor", "dataset:monitoring"),
    ("quality", "roles/bigquery.jobUser", "project"),
    ("quality", "roles/monitoring.metricWriter", "project"),
    ("quality", "roles/logging.logWriter", "project"),
    ("quality", "roles/aiplatform.user", "project"),
    ("quality", "roles/secretmanager.secretAccessor", "secret:slack-webhook-critical"),
    ("quality", "roles/secretmanager.secretAccessor", "secret:slack-webhook-warning"),
    ("scheduler", "roles/run.invoker", "function:quality_check"),
    # ... and the etl function's freshness probe (POST /freshness).
    ("scheduler", "roles/run.invoker", "function:etl"),
    # GKE nodes: logs, metrics, image pulls.
    ("gke-nodes", "roles/logging.logWriter", "project"),
    ("gke-nodes", "roles/monitoring.metricWriter", "project"),
    ("gke-nodes", "roles/monitoring.viewer", "project"),
    ("gke-nodes", "roles/stackdriver.resourceMetadata.writer", "project"),
    ("gke-nodes", "roles/artifactregistry.reader", "repository:images"),
    # Debezium: Cloud SQL through the proxy, publish CDC topics, its DB password.
    ("debezium", "roles/cloudsql.client", "project"),
    ("debezium", "roles/monitoring.metricWriter", "project"),
    ("debezium", "roles/secretmanager.secretAccessor", "secret:debezium-db-password"),
    *{
        ("debezium", "roles/pubsub.publisher", f"topic:cdc:{t}")
        for t in ("shop.orders", "shop.order_items", "shop.inventory", "shop.shipments")
    },
    *{
        ("debezium", "roles/pubsub.publisher", f"topic:debezium:{k}")
        for k in ("transaction", "heartbeat", "heartbeat-table")
    },
    # Beam on Flink: pull events, write raw, checkpoints in GCS.
    ("beam", "roles/pubsub.subscriber", "subscription:events-loader"),
    ("beam", "roles/pubsub.viewer", "subscription:events-loader"),
    ("beam", "roles/bigquery.dataEditor", "dataset:raw"),
    ("beam", "roles/bigquery.jobUser", "project"),
    ("beam", "roles/monitoring.metricWriter", "project"),
    ("beam", "roles/storage.objectAdmin", "bucket:flink"),
}


def _actual_grants() -> set[tuple[str, str, str]]:
    locals_ = _locals()
    tables = list(load_catalog().cdc_sources())
    grants: set[tuple[str, str, str]] = set()

    for role, members in _role_lists(locals_["project_iam"]):
        grants |= {(m, role, "project") for m in members}
    for layer, body in locals_["dataset_iam"].items():
        for role, members in _role_lists(body):
            grants |= {(m, role, f"dataset:{layer}") for m in members}
    for kind, local_name in (("topic", "topic_iam"), ("subscription", "subscription_iam")):
        text = locals_[local_name]
        for key, body in re.findall(r'([\w-]+|"[^"]+") =>? \{([^{}]*)\}', text):
            if "${t}" in key:
                keys = [_unq(key).replace("${t}", t) for t in tables]
            elif key == "k":  # `for k in [literal keys] : k => {...}`
                listed = re.search(r"for k in \[([^\]]*)\] : k =>", text)
                keys = re.findall(r'"([^"]+)"', listed.group(1)) if listed else []
            else:
                keys = [key]
            for role, members in _role_lists(body):
                grants |= {(m, role, f"{kind}:{k}") for k in keys for m in members}
    for name, secret in locals_["secrets"].items():
        grants |= {
            (m, "roles/secretmanager.secretAccessor", f"secret:{name}")
            for m in _members(secret["readers"])
        }
    for fn, body in locals_["functions"].items():
        for role, members in _role_lists(body["iam"]):
            grants |= {(m, role, f"function:{fn}") for m in members}
    for name, res in _resources("google_project_iam_member").items():
        if name != "workload":
            grants |= {(m, _unq(res["role"]), "project") for m in _members(str(res["member"]))}
    repo_iam = _resources("google_artifact_registry_repository_iam_member")["reader"]
    grants |= {
        (m, "roles/artifactregistry.reader", "repository:images")
        for m in _members(str(repo_iam["for_each"]))
    }
    for role, members in _role_lists(locals_["flink_bucket_iam"]):
        grants |= {(m, role, "bucket:flink") for m in members}
    return grants


def test_every_service_account_has_exactly_the_roles_its_code_needs() -> None:
    actual = _actual_grants()
    missing = EXPECTED_GRANTS - actual
    extra = actual - EXPECTED_GRANTS
    assert not missing and not extra, f"missing: {sorted(missing)}\nextra: {sorted(extra)}"


def test_no_service_account_keys_are_created() -> None:
    assert not _resources("google_service_account_key")


# --- workflows ---------------------------------------------------------------------------------

# Set by Cloud Workflows itself for every execution.
WORKFLOWS_BUILTIN_ENV = {
    "GOOGLE_CLOUD_PROJECT_ID",
    "GOOGLE_CLOUD_PROJECT_NUMBER",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_CLOUD_WORKFLOW_ID",
    "GOOGLE_CLOUD_WORKFLOW_REVISION_ID",
    "GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID",
}


def test_workflow_env_vars_are_set_by_terraform() -> None:
    source = (ROOT / "workflows" / "daily_etl.yaml").read_text(encoding="utf-8")
    used = set(re.findall(r'sys\.get_env\("(\w+)"\)', source)) - WORKFLOWS_BUILTIN_ENV
    workflow = _resources("google_workflows_workflow")["daily_etl"]
    env = workflow["user_env_vars"]
    provided = set(env if isinstance(env, dict) else re.findall(r"(\w+)\s*=", str(env)))
    assert used, "the workflow reads no env var: values must come via sys.get_env"
    assert used <= provided, f"not set by Terraform: {sorted(used - provided)}"


# --- checkov -----------------------------------------------------------------------------------


def test_checkov_terraform_has_no_failed_check(infra_bin: Path) -> None:
    result = subprocess.run(
        [
            str(infra_bin / "checkov"),
            "-d",
            str(TF),
            "--framework",
            "terraform",
            "--skip-download",
            "--compact",
            "-o",
            "json",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for r in reports
        for c in r["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    skipped = [c for r in reports for c in r["results"]["skipped_checks"]]
    for check in skipped:
        reason = check.get("check_result", {}).get("suppress_comment", "")
        assert reason.strip(), f"unjustified skip {check['check_id']}"


# --- state hygiene -----------------------------------------------------------------------------


def test_no_secret_value_is_read_into_state() -> None:
    """No data source reads a secret version, and a version Terraform writes is write-only."""
    for file in _tf_files():
        for block in _load(file).get("data", []):
            assert "google_secret_manager_secret_version" not in {_unq(k) for k in block}, file
    versions = _resources("google_secret_manager_secret_version")
    for name, body in versions.items():
        assert "secret_data" not in body, f"{name}: secret_data is stored in state"
        assert "secret_data_wo" in body and _unq(body["deletion_policy"]) == "ABANDON"
    ephemeral = dict(_blocks("variable", TF / "variables.tf"))["secret_values"]
    assert ephemeral.get("ephemeral") is True and ephemeral.get("sensitive") is True


def test_every_mounted_secret_can_be_bootstrapped_in_the_first_apply() -> None:
    """Cloud Run needs a version of each secret it mounts when it creates the function."""
    variable = dict(_blocks("variable", TF / "variables.tf"))["bootstrap_secrets"]
    validation = variable["validation"]
    validation = validation[0] if isinstance(validation, list) else validation
    allowed = set(re.findall(r'"([\w-]+)"', str(validation["condition"])))
    mounted = {
        name
        for body in _locals()["functions"].values()
        for name in re.findall(r'secret\["([\w-]+)"\]', _text(body.get("secrets", {})))
    }
    assert mounted <= allowed
    assert allowed <= set(_locals()["secrets"])


def test_state_lives_in_a_configurable_gcs_backend() -> None:
    text = (TF / "versions.tf").read_text(encoding="utf-8")
    assert re.search(r'backend\s+"gcs"\s*\{\s*\}', text), "partial gcs backend (init-time config)"
