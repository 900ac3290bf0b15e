"""Ingest's trace sampling is one number: Terraform's default, the collector's config map and
the ratio the ingest benchmark measures telemetry overhead at."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from tests.infra.hcl import _variable_defaults

from edp.settings import Settings
from edp_tools.bench.ingest import DEPLOYED_TRACE_SAMPLE_RATIO

CONFIG_MAP = Path(__file__).resolve().parents[2] / "gke" / "base" / "settings-configmap.env"


def _config_map() -> dict[str, str]:
    lines = CONFIG_MAP.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_one_ingest_sampling_ratio_everywhere() -> None:
    terraform = float(_variable_defaults()["ingest_trace_sample_ratio"])
    collector = _config_map()
    assert collector["EDP_TRACES_EXPORTER"] == "cloud_trace"
    assert float(collector["EDP_TRACES_SAMPLE_RATIO"]) == terraform
    assert terraform == DEPLOYED_TRACE_SAMPLE_RATIO
    assert 0 < terraform < 1  # sampled: every request traced costs ~0.5 ms of its CPU


def test_the_ratio_is_validated_as_a_share() -> None:
    assert Settings(_env_file=None, traces_sample_ratio=0.1).traces_sample_ratio == 0.1
    for bad in (-0.1, 1.5):
        with pytest.raises(ValidationError):
            Settings(_env_file=None, traces_sample_ratio=bad)
