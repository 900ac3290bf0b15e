"""Settings reach the code: what Terraform passes is read, what production needs is passed.

Both directions, per deployed function:

- every env var Terraform gives a function is a setting (a typo would be silently ignored:
  pydantic-settings drops unknown ``EDP_*`` variables);
- every setting marked ``terraform`` (its default is a laptop value or a per-deployment choice)
  that the function's code reads is passed by Terraform, as plain env or as a secret;
- no setting marked ``local`` (emulator hosts, local files) is ever passed to a function.
"""

from __future__ import annotations

import pytest

from edp.settings import Settings, deploy_scope

from .conftest import TFVARS
from .needs import function_needs
from .terraform_env import function_env

NEEDS = function_needs()


def _env_names(field: str) -> set[str]:
    alias = Settings.model_fields[field].validation_alias
    choices = getattr(alias, "choices", None)
    return {str(c) for c in choices} if choices else {f"EDP_{field.upper()}"}


def _field(env: str) -> str | None:
    for field in Settings.model_fields:
        if env in _env_names(field):
            return field
    return None


@pytest.mark.parametrize("function", sorted(NEEDS))
def test_every_env_var_terraform_passes_is_a_setting(function: str) -> None:
    env, secrets = function_env(function, TFVARS)
    unknown = sorted(name for name in {*env, *secrets} if _field(name) is None)
    assert not unknown, f"{function}: Terraform passes env vars no setting reads: {unknown}"


@pytest.mark.parametrize("function", sorted(NEEDS))
def test_every_production_setting_the_code_reads_is_passed(function: str) -> None:
    env, secrets = function_env(function, TFVARS)
    passed = {_field(name) for name in {*env, *secrets}}
    needed = {f for f in NEEDS[function].settings if deploy_scope(f) == "terraform"}
    assert not needed - passed, f"{function} reads but Terraform never sets: {needed - passed}"


@pytest.mark.parametrize("function", sorted(NEEDS))
def test_no_local_only_setting_is_deployed(function: str) -> None:
    env, secrets = function_env(function, TFVARS)
    local = sorted(n for n in {*env, *secrets} if deploy_scope(_field(n) or "") == "local")
    assert not local, f"{function} is given laptop-only settings: {local}"


def test_passed_values_validate_as_settings() -> None:
    for function in NEEDS:
        env, _ = function_env(function, TFVARS)
        settings = Settings(_env_file=None, **{_field(k): v for k, v in env.items()})  # type: ignore[misc]
        assert settings.warehouse == "bigquery"
        assert settings.metrics_exporter == "cloud_monitoring"
