"""Create the topology on the emulator or in a GCP project, idempotently.

In GCP, Terraform owns the resources and this is only used to check them; on the emulator
(``edp dev``, tests) it is how topics and subscriptions come to exist.

Example (needs an emulator):
    >>> ensure_topology(build_topology())            # doctest: +SKIP
    TopologyReport(created=[...], existing=[], updated=[])
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from edp.bus.clients import get_publisher, get_subscriber, subscription_path, topic_path
from edp.bus.topology import SubscriptionSpec, TopicSpec, Topology, build_topology
from edp.errors import ConfigError, TransientError
from edp.settings import Settings, get_settings

__all__ = ["TopologyReport", "delete_topology", "ensure_topology"]


@dataclass
class TopologyReport:
    """What :func:`ensure_topology` did, by resource name."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


def _duration(seconds: int) -> dict[str, int]:
    return {"seconds": seconds}


def _subscription_body(sub: SubscriptionSpec, topology: Topology, project: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": subscription_path(project, sub.name),
        "topic": topic_path(project, topology.topic_name(sub.topic)),
        "ack_deadline_seconds": sub.ack_deadline_s,
        "enable_message_ordering": sub.ordering,
        "message_retention_duration": _duration(sub.message_retention_s),
        "retain_acked_messages": sub.retain_acked_messages,
    }
    if sub.never_expire:
        body["expiration_policy"] = {}  # empty ttl = never expire
    if sub.dead_letter is not None:
        body["dead_letter_policy"] = {
            "dead_letter_topic": topic_path(project, topology.topic_name(sub.dead_letter.topic)),
            "max_delivery_attempts": sub.dead_letter.max_delivery_attempts,
        }
    if sub.retry is not None:
        body["retry_policy"] = {
            "minimum_backoff": _duration(sub.retry.minimum_backoff_s),
            "maximum_backoff": _duration(sub.retry.maximum_backoff_s),
        }
    return body


def _ensure_topic(publisher: Any, project: str, topic: TopicSpec, report: TopologyReport) -> None:
    from google.api_core import exceptions

    name = topic_path(project, topic.name)
    try:
        publisher.create_topic(
            request={
                "name": name,
                "message_retention_duration": _duration(topic.message_retention_s),
            }
        )
        report.created.append(name)
    except exceptions.AlreadyExists:
        report.existing.append(name)


def _ensure_subscription(
    subscriber: Any,
    project: str,
    sub: SubscriptionSpec,
    topology: Topology,
    report: TopologyReport,
) -> None:
    from google.api_core import exceptions

    body = _subscription_body(sub, topology, project)
    name = body["name"]
    try:
        subscriber.create_subscription(request=body)
        report.created.append(name)
        return
    except exceptions.AlreadyExists:
        pass
    current = subscriber.get_subscription(request={"subscription": name})
    if current.topic != body["topic"]:
        raise ConfigError(
            f"subscription {name} reads {current.topic}, expected {body['topic']}; "
            "a subscription's topic cannot change: delete it first"
        )
    if bool(current.enable_message_ordering) != sub.ordering:
        raise ConfigError(
            f"subscription {name} has message ordering={current.enable_message_ordering}, "
            f"expected {sub.ordering}; ordering cannot change: delete it first"
        )
    stale: list[str] = []
    if current.ack_deadline_seconds != sub.ack_deadline_s:
        stale.append("ack_deadline_seconds")
    want_dlq = body.get("dead_letter_policy")
    have_dlq = (
        {
            "dead_letter_topic": current.dead_letter_policy.dead_letter_topic,
            "max_delivery_attempts": current.dead_letter_policy.max_delivery_attempts,
        }
        if current.dead_letter_policy.dead_letter_topic
        else None
    )
    if want_dlq != have_dlq:
        stale.append("dead_letter_policy")
    if not stale:
        report.existing.append(name)
        return
    update = {key: body.get(key) for key in stale}
    update["name"] = name
    subscriber.update_subscription(
        request={"subscription": update, "update_mask": {"paths": stale}}
    )
    report.updated.append(name)


def ensure_topology(
    topology: Topology | None = None,
    *,
    settings: Settings | None = None,
    project: str | None = None,
) -> TopologyReport:
    """Create every topic, then every subscription; leave existing ones (fixing mutable drift).

    Args:
        topology: What to create (default: :func:`build_topology` of the settings).
        settings: Where (default: current settings).
        project: Project id (default: ``settings.project``).

    Raises:
        ConfigError: An existing subscription differs in something immutable (topic, ordering).
        TransientError: The Pub/Sub service (or emulator) could not be reached.
    """
    from google.api_core import exceptions

    s = settings or get_settings()
    topo = topology or build_topology(s)
    proj = project or s.project
    publisher = get_publisher(s)
    subscriber = get_subscriber(s)
    report = TopologyReport()
    try:
        for topic in topo.topics:
            _ensure_topic(publisher, proj, topic, report)
        for sub in topo.subscriptions:
            _ensure_subscription(subscriber, proj, sub, topo, report)
    except (exceptions.ServiceUnavailable, exceptions.DeadlineExceeded) as exc:
        raise TransientError(f"Pub/Sub unreachable while creating the topology: {exc}") from exc
    return report


def delete_topology(
    topology: Topology,
    *,
    settings: Settings | None = None,
    project: str | None = None,
) -> None:
    """Delete the subscriptions, then the topics of ``topology`` (missing ones are fine)."""
    from google.api_core import exceptions

    s = settings or get_settings()
    proj = project or s.project
    subscriber = get_subscriber(s)
    publisher = get_publisher(s)
    for sub in topology.subscriptions:
        with contextlib.suppress(exceptions.NotFound):
            subscriber.delete_subscription(
                request={"subscription": subscription_path(proj, sub.name)}
            )
    for topic in topology.topics:
        with contextlib.suppress(exceptions.NotFound):
            publisher.delete_topic(request={"topic": topic_path(proj, topic.name)})
