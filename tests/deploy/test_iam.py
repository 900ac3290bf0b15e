"""Each Cloud Run function's service account has exactly the grants its code needs.

The needs are derived from the code (:mod:`.needs`); the grants are read from terraform/. A
missing grant (the function would fail in GCP with 403) and a grant no code uses (a wider blast
radius for nothing) both fail.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from edp.settings import Settings
from infra.hcl import _locals, _members, _role_lists, _text, _unq

from .needs import Needs, function_needs

NEEDS = function_needs()
LOCALS = _locals()


def _sa(function: str) -> str:
    return _unq(LOCALS["functions"][function]["sa"])


def _dataset_roles(sa: str) -> dict[str, set[str]]:
    roles: dict[str, set[str]] = {}
    for dataset, body in LOCALS["dataset_iam"].items():
        for role, members in _role_lists(body):
            if sa in members:
                roles.setdefault(role, set()).add(dataset)
    return roles


def _pubsub_grants(local_name: str, sa: str) -> dict[str, set[str]]:
    """{role: keys} granted to ``sa`` in topic_iam / subscription_iam (for-expressions expanded)."""
    tables = [t for t in _cdc_tables()]
    text = _text(LOCALS[local_name])
    found: dict[str, set[str]] = {}
    for key, body in re.findall(r'([\w-]+|"[^"]+") =>? \{([^{}]*)\}', text):
        if "${t}" in key:
            keys = [_unq(key).replace("${t}", t) for t in tables]
        elif key == "k":
            listed = re.search(r"for k in \[([^\]]*)\] : k =>", text)
            keys = re.findall(r'"([^"]+)"', listed.group(1)) if listed else []
        else:
            keys = [_unq(key)]
        for role, members in _role_lists(body):
            if sa in members:
                found.setdefault(role, set()).update(keys)
    return found


def _cdc_tables() -> list[str]:
    from edp.contracts.catalog import load_catalog

    return list(load_catalog().cdc_sources())


def _secret_readers(sa: str) -> set[str]:
    return {name for name, secret in LOCALS["secrets"].items() if sa in _members(secret["readers"])}


def _secret_settings(function: str) -> dict[str, str]:
    """{secret name: Settings field} of the secrets Terraform gives the function as env."""
    body: dict[str, Any] = LOCALS["functions"][function]
    secrets = body.get("secrets") or {}
    out: dict[str, str] = {}
    for env, ref in secrets.items() if isinstance(secrets, dict) else []:
        match = re.search(r'secret\["([\w-]+)"\]', _text(ref))
        assert match, f"{function}: secret env {env} does not name a managed secret"
        field = env.removeprefix("EDP_").lower()
        assert field in Settings.model_fields, f"{function}: {env} is no setting"
        out[match.group(1)] = field
    return out


FUNCTIONS = sorted(NEEDS)


def test_every_deployed_function_is_covered() -> None:
    assert set(FUNCTIONS) == set(LOCALS["functions"]), "derive the needs of every function"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_dataset_grants_equal_what_the_code_reads_and_writes(function: str) -> None:
    needs: Needs = NEEDS[function]
    roles = _dataset_roles(_sa(function))
    assert roles.get("roles/bigquery.dataEditor", set()) == needs.writes
    assert roles.get("roles/bigquery.dataViewer", set()) == needs.read_only()
    assert set(roles) <= {"roles/bigquery.dataEditor", "roles/bigquery.dataViewer"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_bigquery_job_user_only_where_the_code_queries(function: str) -> None:
    sa = _sa(function)
    job_users = dict(_role_lists(LOCALS["project_iam"])).get("roles/bigquery.jobUser", [])
    assert (sa in job_users) == bool(NEEDS[function].reads | NEEDS[function].writes)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_pubsub_grants_equal_what_the_code_publishes_and_pulls(function: str) -> None:
    sa = _sa(function)
    topics = _pubsub_grants("topic_iam", sa)
    subs = _pubsub_grants("subscription_iam", sa)
    assert topics.get("roles/pubsub.publisher", set()) == NEEDS[function].publishes
    assert subs.get("roles/pubsub.subscriber", set()) == NEEDS[function].pulls
    # viewer is what the client needs to read the subscription's dead-letter policy
    assert subs.get("roles/pubsub.viewer", set()) == NEEDS[function].pulls


@pytest.mark.parametrize("function", FUNCTIONS)
def test_secret_access_equals_the_secrets_the_code_reads(function: str) -> None:
    given = _secret_settings(function)
    used = {name for name, field in given.items() if field in NEEDS[function].settings}
    assert used == set(given), f"{function} is given secrets its code never reads"
    assert _secret_readers(_sa(function)) == used
