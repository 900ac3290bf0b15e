"""The message bus: Pub/Sub topology as data, client factories, publish/pull/ack helpers.

- :mod:`edp.bus.topology` — every topic and subscription (``build_topology``);
- :mod:`edp.bus.admin` — ``ensure_topology`` (idempotent create on the emulator or in GCP);
- :mod:`edp.bus.clients` — cached, tuned ``get_publisher`` / ``get_subscriber``;
- :mod:`edp.bus.messages` — ``publish_all``, ``pull`` / ``pull_many``, ``ack`` / ``nack`` /
  ``extend``.
"""

from __future__ import annotations

from edp.bus.admin import TopologyReport, delete_topology, ensure_topology
from edp.bus.clients import (
    PublisherTuning,
    get_publisher,
    get_subscriber,
    subscription_path,
    topic_path,
)
from edp.bus.messages import (
    MAX_PULL,
    Message,
    Received,
    ack,
    extend,
    nack,
    publish_all,
    pull,
    pull_many,
)
from edp.bus.topology import (
    DeadLetterPolicy,
    RetryPolicy,
    SubscriptionSpec,
    TopicSpec,
    Topology,
    build_topology,
)

__all__ = [
    "MAX_PULL",
    "DeadLetterPolicy",
    "Message",
    "PublisherTuning",
    "Received",
    "RetryPolicy",
    "SubscriptionSpec",
    "TopicSpec",
    "Topology",
    "TopologyReport",
    "ack",
    "build_topology",
    "delete_topology",
    "ensure_topology",
    "extend",
    "get_publisher",
    "get_subscriber",
    "nack",
    "publish_all",
    "pull",
    "pull_many",
    "subscription_path",
    "topic_path",
]
