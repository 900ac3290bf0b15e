"""The job ships in what workers install: the edp wheel, installed into a clean venv.

Beam pickles DoFns by reference (module + class name), so a worker needs the job's modules
installed - a job that lives only in the submitter's source tree fails on the workers with
``No module named ...``. This builds the wheel the images build (``pip wheel ".[beam]"`` in
gke/images/beam.Dockerfile and beam/dataflow.Dockerfile), installs it with the beam extra into
a fresh venv (what ``pip install "edp[beam]"`` does in the SDK image), and, from a directory
outside the repository, imports every module of the job and round-trips every DoFn through
Beam's pickler. No Docker here: the image's Python environment is reproduced, not run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = (REPO / "gke" / "images" / "beam.Dockerfile", REPO / "beam" / "dataflow.Dockerfile")

_PROBE = r"""
import importlib, json, pkgutil, sys, sysconfig
import apache_beam as beam
from apache_beam.internal import pickler
import edp_stream_load

site = sysconfig.get_paths()["purelib"]
modules, dofns, outside = [], [], []
for info in pkgutil.walk_packages(edp_stream_load.__path__, "edp_stream_load."):
    module = importlib.import_module(info.name)
    modules.append(info.name)
    if not module.__file__.startswith(site):
        outside.append(module.__file__)
    for name, value in vars(module).items():
        if (isinstance(value, type) and issubclass(value, beam.DoFn)
                and value.__module__ == info.name):
            # By reference, as the SDK harness loads it: module + qualified name.
            assert pickler.loads(pickler.dumps(value)) is value
            dofns.append(f"{info.name}.{name}")
print(json.dumps({"modules": modules, "dofns": sorted(dofns), "outside": outside,
                  "beam": beam.__version__}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    uv = shutil.which("uv")
    assert uv, "uv builds the wheel (the same setuptools build pip wheel runs)"
    subprocess.run(
        [uv, "build", "--wheel", "-q", "-o", str(out), str(REPO)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    (built,) = out.glob("edp-*.whl")
    return built


def test_the_wheel_carries_the_job_beside_the_production_package(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("__init__", "__main__", "options", "pipeline", "sinks", "transforms", "flink"):
        assert f"edp_stream_load/{module}.py" in names
    assert "edp/load/transforms.py" in names  # what the job's DoFns call into
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    # The beam extra pins the SDK version of the worker images (apache/beam_python3.11_sdk).
    assert re.search(r"Requires-Dist: apache-beam\[gcp\]==2\.77\.0; extra == \"beam\"", text)


def test_the_images_install_that_wheel_with_the_beam_extra() -> None:
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text(encoding="utf-8")
        assert 'pip wheel --wheel-dir /wheels ".[beam]"' in text
        assert "COPY beam ./beam" in text
        assert '"edp[beam]"' in text
        assert "ARG BEAM_VERSION=2.77.0" in text


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_dofn_module_imports_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv, "uv builds the clean venv"
    venv = tmp_path / "image-venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(python), f"edp[beam] @ {wheel.as_uri()}"],
        check=True, capture_output=True, text=True, timeout=800,
    )  # fmt: skip
    workdir = tmp_path / "elsewhere"  # not the repository: nothing importable by accident
    workdir.mkdir()
    done = subprocess.run(
        [str(python), "-c", _PROBE], cwd=workdir, capture_output=True, text=True, timeout=300,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["beam"] == "2.77.0"
    assert found["outside"] == []  # every module came from the installed wheel
    assert {"edp_stream_load.pipeline", "edp_stream_load.sinks"} <= set(found["modules"])
    assert {
        "edp_stream_load.transforms.ParseMessageFn",
        "edp_stream_load.transforms.BatchPerShardFn",
        "edp_stream_load.transforms.FirstPerEventIdFn",
        "edp_stream_load.sinks.WriteBatchFn",
        "edp_stream_load.sinks.RefusedRowFn",
    } <= set(found["dofns"])
