"""CDC's Pub/Sub resources: the per-table topics and flush subscriptions of :mod:`edp.bus`, plus
the topics Debezium Server also writes to.

Besides ``<prefix>.<schema>.<table>`` for every captured table (declared in
:func:`edp.bus.topology.build_topology`), Debezium publishes to:

- ``<prefix>.transaction``: transaction BEGIN/END markers (``provide.transaction.metadata``);
- ``debezium-heartbeat.<prefix>``: heartbeats (``topic.heartbeat.prefix``);
- ``<prefix>.shop.debezium_heartbeat``: the row its ``heartbeat.action.query`` updates.

Nothing subscribes to them (a message to a topic without subscriptions is dropped), but the
topics must exist or the Pub/Sub sink fails.

Example:
    >>> from edp.settings import Settings
    >>> [t.name for t in extra_topics(Settings(_env_file=None))]
    ['cdc.transaction', 'debezium-heartbeat.cdc', 'cdc.shop.debezium_heartbeat']
"""

from __future__ import annotations

from edp.bus.admin import TopologyReport, ensure_topology
from edp.bus.topology import TopicSpec, Topology, build_topology
from edp.settings import Settings, get_settings

#: Debezium's ``topic.heartbeat.prefix`` (its default ``__debezium-heartbeat`` is not a valid
#: Pub/Sub topic name), and ``topic.transaction`` suffix (gke/ application.properties).
HEARTBEAT_TOPIC_PREFIX = "debezium-heartbeat"
TRANSACTION_TOPIC_SUFFIX = "transaction"
#: The source schema and the table Debezium's ``heartbeat.action.query`` updates.
SOURCE_SCHEMA = "shop"
HEARTBEAT_TABLE = "debezium_heartbeat"
#: Debezium's ``heartbeat.action.query``; the local reader runs the same statement.
HEARTBEAT_ACTION_QUERY = (
    f"INSERT INTO {SOURCE_SCHEMA}.{HEARTBEAT_TABLE} (id, ts) VALUES (1, now()) "
    "ON CONFLICT (id) DO UPDATE SET ts = EXCLUDED.ts"
)


def extra_topics(settings: Settings | None = None) -> tuple[TopicSpec, ...]:
    """Topics Debezium writes besides the captured tables' ones."""
    s = settings or get_settings()
    prefix = s.cdc_topic_prefix
    return (
        TopicSpec(
            "cdc:transaction",
            f"{prefix}.{TRANSACTION_TOPIC_SUFFIX}",
            description="Debezium transaction BEGIN/END markers.",
        ),
        TopicSpec(
            "cdc:heartbeat",
            f"{HEARTBEAT_TOPIC_PREFIX}.{prefix}",
            description="Debezium heartbeats.",
        ),
        TopicSpec(
            f"cdc:{SOURCE_SCHEMA}.{HEARTBEAT_TABLE}",
            f"{prefix}.{SOURCE_SCHEMA}.{HEARTBEAT_TABLE}",
            description="Changes of Debezium's heartbeat table (heartbeat.action.query).",
        ),
    )


def cdc_topology(settings: Settings | None = None) -> Topology:
    """The platform topology plus Debezium's extra topics."""
    s = settings or get_settings()
    base = build_topology(s)
    return Topology(base.topics + extra_topics(s), base.subscriptions)


def ensure_cdc_topology(settings: Settings | None = None) -> TopologyReport:
    """Create every topic/subscription CDC needs (idempotent)."""
    s = settings or get_settings()
    return ensure_topology(cdc_topology(s), settings=s)
