"""Every Pub/Sub topic and subscription the platform uses, as data.

One description, three readers: :func:`edp.bus.admin.ensure_topology` creates it on the emulator
(``edp dev``, tests) or in a GCP project; Terraform's ``04-pubsub.tf`` declares the same resources
(a static test compares them); the README and the docs list it.

Keys are stable logical names (``events``, ``cdc:shop.orders``, ``cdc-flush:shop.orders``) —
the same keys ``04-pubsub.tf`` uses in its ``for_each`` maps; names are the configured resource
names (``EDP_TOPIC_*``, ``EDP_SUBSCRIPTION_*``, ``EDP_CDC_*``).

The shape:

* ``events`` (accepted events, NDJSON) -> ``events-loader`` (the stream loader; dead-letters to
  ``events-dead-letter`` after ``EDP_MAX_DELIVERY_ATTEMPTS``);
* ``events-bad`` (refused events with the reason) -> ``events-bad-archive``;
* ``cdc.<schema>.<table>`` per captured table (Debezium's topic naming; published with ordering
  key = the row key) -> ``cdc-flush.<schema>.<table>`` (dead-letters to ``cdc-dead-letter``).
  Message ordering is **off** on purpose: the flusher is idempotent and staging orders by
  (lsn, position in transaction), so delivery order does not matter, while ordered delivery
  costs 6x per Publish RPC and ~5x pull throughput on the emulator (measured by the CDC work)
  and adds head-of-line blocking behind a nacked message in GCP;
* each dead-letter topic -> ``<topic>-archive`` so parked messages are kept for inspection and
  replay instead of being dropped by a topic without subscribers.

Example:
    >>> from edp.settings import Settings
    >>> topo = build_topology(Settings(_env_file=None))
    >>> topo.subscription("events-loader").dead_letter.topic
    'events-dead-letter'
    >>> topo.subscription("cdc-flush:shop.orders").name
    'cdc-flush.shop.orders'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edp.errors import ConfigError
from edp.settings import Settings, get_settings

__all__ = [
    "DEFAULT_ACK_DEADLINE_S",
    "DEFAULT_RETENTION_S",
    "DeadLetterPolicy",
    "RetryPolicy",
    "SubscriptionSpec",
    "TopicSpec",
    "Topology",
    "build_topology",
]

#: Seven days: the longest a subscription can keep unacked messages, so a weekend outage of a
#: consumer loses nothing.
DEFAULT_RETENTION_S = 7 * 24 * 3600
#: Long enough for a micro-batch write to land before the message is redelivered.
DEFAULT_ACK_DEADLINE_S = 60
#: CDC flushes buffer up to 100 rows / 5 s and then write; give them room.
CDC_ACK_DEADLINE_S = 120


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff between redeliveries of a nacked/expired message."""

    minimum_backoff_s: int = 10
    maximum_backoff_s: int = 600


@dataclass(frozen=True)
class DeadLetterPolicy:
    """Park a message on ``topic`` (a topic *key*) after ``max_delivery_attempts`` deliveries.

    In GCP the Pub/Sub service agent
    (``service-<project-number>@gcp-sa-pubsub.iam.gserviceaccount.com``) must hold
    ``roles/pubsub.publisher`` on the dead-letter topic and ``roles/pubsub.subscriber`` on the
    source subscription, or dead-lettering silently does not happen (Terraform grants both;
    the emulator has no IAM).
    """

    topic: str
    max_delivery_attempts: int = 5


@dataclass(frozen=True)
class TopicSpec:
    """A topic: logical ``key`` and resource ``name``."""

    key: str
    name: str
    message_retention_s: int = DEFAULT_RETENTION_S
    description: str = ""


@dataclass(frozen=True)
class SubscriptionSpec:
    """A pull subscription of ``topic`` (a topic *key*)."""

    key: str
    name: str
    topic: str
    ack_deadline_s: int = DEFAULT_ACK_DEADLINE_S
    ordering: bool = False
    dead_letter: DeadLetterPolicy | None = None
    retry: RetryPolicy | None = field(default_factory=RetryPolicy)
    message_retention_s: int = DEFAULT_RETENTION_S
    retain_acked_messages: bool = False
    #: Never expire: an idle night must not delete the subscription.
    never_expire: bool = True
    description: str = ""


@dataclass(frozen=True)
class Topology:
    """Topics and subscriptions, looked up by key or by name."""

    topics: tuple[TopicSpec, ...]
    subscriptions: tuple[SubscriptionSpec, ...]

    def __post_init__(self) -> None:
        topic_keys = {t.key for t in self.topics}
        for kind, items in (("topic", self.topics), ("subscription", self.subscriptions)):
            keys = [i.key for i in items]
            names = [i.name for i in items]
            for label, values in (("key", keys), ("name", names)):
                dupes = sorted({v for v in values if values.count(v) > 1})
                if dupes:
                    raise ConfigError(f"duplicate {kind} {label}(s) in the topology: {dupes}")
        for sub in self.subscriptions:
            if sub.topic not in topic_keys:
                raise ConfigError(f"subscription {sub.key!r} reads unknown topic {sub.topic!r}")
            if sub.dead_letter is not None:
                if sub.dead_letter.topic not in topic_keys:
                    raise ConfigError(
                        f"subscription {sub.key!r} dead-letters to unknown topic "
                        f"{sub.dead_letter.topic!r}"
                    )
                if sub.dead_letter.topic == sub.topic:
                    raise ConfigError(f"subscription {sub.key!r} dead-letters to its own topic")

    def topic(self, key: str) -> TopicSpec:
        """The topic with this logical key.

        Raises:
            ConfigError: Unknown key.
        """
        for topic in self.topics:
            if topic.key == key:
                return topic
        raise ConfigError(f"unknown topic key {key!r}; known: {[t.key for t in self.topics]}")

    def subscription(self, key: str) -> SubscriptionSpec:
        """The subscription with this logical key.

        Raises:
            ConfigError: Unknown key.
        """
        for sub in self.subscriptions:
            if sub.key == key:
                return sub
        known = [s.key for s in self.subscriptions]
        raise ConfigError(f"unknown subscription key {key!r}; known: {known}")

    def topic_name(self, key: str) -> str:
        """Resource name of a topic key (what clients publish to)."""
        return self.topic(key).name

    def subscription_name(self, key: str) -> str:
        """Resource name of a subscription key (what clients pull from)."""
        return self.subscription(key).name

    def cdc_topic_keys(self) -> list[str]:
        """Keys of the per-table CDC topics (``cdc:<schema>.<table>``)."""
        return [t.key for t in self.topics if t.key.startswith("cdc:")]

    def subscriptions_of(self, topic_key: str) -> list[SubscriptionSpec]:
        """Subscriptions attached to a topic."""
        return [s for s in self.subscriptions if s.topic == topic_key]


def build_topology(settings: Settings | None = None) -> Topology:
    """The platform's topology for the given (default: current) settings."""
    s = settings or get_settings()
    attempts = s.max_delivery_attempts
    topics: list[TopicSpec] = [
        TopicSpec("events", s.topic_events, description="Accepted behaviour events (NDJSON)."),
        TopicSpec("events-bad", s.topic_bad_events, description="Refused events with reasons."),
        TopicSpec(
            "events-dead-letter",
            s.topic_events_dead_letter,
            description="Events the loader failed on after all delivery attempts.",
        ),
        TopicSpec(
            "cdc-dead-letter",
            s.cdc_dead_letter_topic,
            description="CDC changes the flusher could not write (poison or exhausted).",
        ),
    ]
    subscriptions: list[SubscriptionSpec] = [
        SubscriptionSpec(
            "events-loader",
            s.subscription_events_loader,
            topic="events",
            dead_letter=DeadLetterPolicy("events-dead-letter", attempts),
            description="Stream loader (Beam on GKE, or the local loader).",
        ),
        SubscriptionSpec(
            "events-bad-archive",
            s.subscription_bad_events_archive,
            topic="events-bad",
            description="Keeps refused events for audit and replay.",
        ),
        SubscriptionSpec(
            "events-dead-letter-archive",
            f"{s.topic_events_dead_letter}-archive",
            topic="events-dead-letter",
            description="Keeps dead-lettered events for inspection and replay.",
        ),
        SubscriptionSpec(
            "cdc-dead-letter-archive",
            f"{s.cdc_dead_letter_topic}-archive",
            topic="cdc-dead-letter",
            description="Keeps dead-lettered CDC changes for inspection and replay.",
        ),
    ]
    for table in s.cdc_tables:
        if table.count(".") != 1:
            raise ConfigError(f"EDP_CDC_TABLES entries must be schema.table, got {table!r}")
        topics.append(
            TopicSpec(
                f"cdc:{table}",
                f"{s.cdc_topic_prefix}.{table}",
                description=f"Debezium change events of {table} (ordering key = row key).",
            )
        )
        subscriptions.append(
            SubscriptionSpec(
                f"cdc-flush:{table}",
                f"{s.cdc_subscription_prefix}.{table}",
                topic=f"cdc:{table}",
                ack_deadline_s=CDC_ACK_DEADLINE_S,
                ordering=False,  # idempotent by (pk, lsn): order is restored in staging
                dead_letter=DeadLetterPolicy("cdc-dead-letter", attempts),
                description=f"CDC flush of {table} into raw.cdc_* (idempotent by pk + LSN).",
            )
        )
    return Topology(tuple(topics), tuple(subscriptions))
