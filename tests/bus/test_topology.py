"""The topology is derived from settings and is internally consistent."""

from __future__ import annotations

import pytest

from edp.bus.topology import (
    DeadLetterPolicy,
    SubscriptionSpec,
    TopicSpec,
    Topology,
    build_topology,
)
from edp.errors import ConfigError
from edp.settings import Settings


def _settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


def test_default_topology_has_the_terraform_keys() -> None:
    topo = build_topology(_settings())
    assert {t.key for t in topo.topics} == {
        "events",
        "events-bad",
        "events-dead-letter",
        "cdc-dead-letter",
        "cdc:shop.orders",
        "cdc:shop.order_items",
        "cdc:shop.inventory",
        "cdc:shop.shipments",
    }
    assert {s.key for s in topo.subscriptions} == {
        "events-loader",
        "events-bad-archive",
        "events-dead-letter-archive",
        "cdc-dead-letter-archive",
        "cdc-flush:shop.orders",
        "cdc-flush:shop.order_items",
        "cdc-flush:shop.inventory",
        "cdc-flush:shop.shipments",
    }


def test_policies() -> None:
    topo = build_topology(_settings(max_delivery_attempts=7))
    loader = topo.subscription("events-loader")
    assert loader.dead_letter == DeadLetterPolicy("events-dead-letter", 7)
    assert not loader.ordering
    for key in topo.cdc_topic_keys():
        (flush,) = topo.subscriptions_of(key)
        # Unordered on purpose: the flush is idempotent by (pk, lsn), staging orders by lsn.
        assert not flush.ordering
        assert flush.dead_letter == DeadLetterPolicy("cdc-dead-letter", 7)
        assert flush.ack_deadline_s >= 60
    # Every dead-letter topic is read by an archive subscription, so nothing parked is lost.
    for sub in topo.subscriptions:
        if sub.dead_letter is not None:
            assert topo.subscriptions_of(sub.dead_letter.topic)
    # Archives never dead-letter themselves (there would be nowhere further to go).
    assert topo.subscription("events-dead-letter-archive").dead_letter is None


def test_names_follow_settings() -> None:
    topo = build_topology(
        _settings(
            topic_events="ev-prod",
            cdc_topic_prefix="dbz",
            cdc_subscription_prefix="flush",
            cdc_tables=["public.orders"],
            topic_events_dead_letter="ev-dlq",
        )
    )
    assert topo.topic_name("events") == "ev-prod"
    assert topo.topic_name("cdc:public.orders") == "dbz.public.orders"
    assert topo.subscription_name("cdc-flush:public.orders") == "flush.public.orders"
    assert topo.subscription_name("events-dead-letter-archive") == "ev-dlq-archive"
    assert topo.cdc_topic_keys() == ["cdc:public.orders"]


def test_cdc_tables_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDP_CDC_TABLES", "shop.orders, shop.refunds")
    topo = build_topology(Settings(_env_file=None))  # type: ignore[call-arg]
    assert topo.cdc_topic_keys() == ["cdc:shop.orders", "cdc:shop.refunds"]


@pytest.mark.parametrize(
    ("topics", "subs", "message"),
    [
        ((TopicSpec("a", "x"), TopicSpec("b", "x")), (), "duplicate topic name"),
        ((TopicSpec("a", "x"),), (SubscriptionSpec("s", "s", topic="nope"),), "unknown topic"),
        (
            (TopicSpec("a", "x"),),
            (SubscriptionSpec("s", "s", topic="a", dead_letter=DeadLetterPolicy("zz")),),
            "dead-letters to unknown",
        ),
        (
            (TopicSpec("a", "x"),),
            (SubscriptionSpec("s", "s", topic="a", dead_letter=DeadLetterPolicy("a")),),
            "its own topic",
        ),
    ],
)
def test_inconsistent_topologies_are_refused(
    topics: tuple[TopicSpec, ...], subs: tuple[SubscriptionSpec, ...], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Topology(topics, subs)


def test_bad_cdc_table_and_unknown_keys() -> None:
    with pytest.raises(ConfigError, match=r"schema\.table"):
        build_topology(_settings(cdc_tables=["orders"]))
    topo = build_topology(_settings())
    with pytest.raises(ConfigError, match="unknown topic key"):
        topo.topic("nope")
    with pytest.raises(ConfigError, match="unknown subscription key"):
        topo.subscription("nope")
