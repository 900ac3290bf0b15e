"""Per-test topologies on the session's emulator (unique names, so tests never share state)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from edp.bus import Topology, delete_topology, ensure_topology
from edp.settings import Settings, get_settings
from edp_tools.local.pubsub_emulator import PubSubEmulator

MakeTopology = Callable[[Topology], Topology]


@pytest.fixture
def bus(pubsub_emulator: PubSubEmulator) -> Settings:
    """Settings pointing at the session's emulator."""
    settings = get_settings()
    assert settings.pubsub_emulator_host == pubsub_emulator.host
    return settings


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def make_topology(bus: Settings) -> Iterator[MakeTopology]:
    """Create a topology on the emulator (deleted after the test)."""
    created: list[Topology] = []

    def make(topology: Topology) -> Topology:
        ensure_topology(topology, settings=bus)
        created.append(topology)
        return topology

    yield make
    for topology in created:
        delete_topology(topology, settings=bus)
