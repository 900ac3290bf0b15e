"""The review rules, one module each, all ``(statements, context) -> list[Finding]``.

:data:`REFERENCE_RULES` are the antipatterns of GoogleCloudPlatform/bigquery-antipattern-recognition
(same names, triggers and messages), in its visitor order, JoinOrder last as it needs table
sizes; :data:`COST_RULES` are the BigQuery cost rules it lacks. Adding a rule is one module
here plus one fixture folder under ``tests/sqlreview/fixtures/<RuleName>/``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlglot import exp

from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding
from edp.sqlreview.rules import (
    cartesian_join,
    cluster_filter_order,
    convert_table_to_temp,
    ctes_eval_multiple_times,
    dynamic_predicate,
    exact_count_distinct,
    join_order,
    latest_record,
    limit_without_savings,
    missing_drop_statement,
    missing_maximum_bytes_billed,
    missing_partition_filter,
    order_by_without_limit,
    partition_filter_defeated,
    semi_join_without_agg,
    simple_select_star,
    string_comparison,
    where_order,
    wide_select_star,
)

Rule = Callable[[Sequence[exp.Expression], RuleContext], list[Finding]]

REFERENCE_RULES: dict[str, Rule] = {
    simple_select_star.NAME: simple_select_star.check,
    semi_join_without_agg.NAME: semi_join_without_agg.check,
    dynamic_predicate.NAME: dynamic_predicate.check,
    order_by_without_limit.NAME: order_by_without_limit.check,
    string_comparison.NAME: string_comparison.check,
    ctes_eval_multiple_times.NAME: ctes_eval_multiple_times.check,
    latest_record.NAME: latest_record.check,
    where_order.NAME: where_order.check,
    missing_drop_statement.NAME: missing_drop_statement.check,
    convert_table_to_temp.NAME: convert_table_to_temp.check,
    join_order.NAME: join_order.check,
}

COST_RULES: dict[str, Rule] = {
    missing_partition_filter.NAME: missing_partition_filter.check,
    partition_filter_defeated.NAME: partition_filter_defeated.check,
    cluster_filter_order.NAME: cluster_filter_order.check,
    wide_select_star.NAME: wide_select_star.check,
    exact_count_distinct.NAME: exact_count_distinct.check,
    limit_without_savings.NAME: limit_without_savings.check,
    cartesian_join.NAME: cartesian_join.check,
    missing_maximum_bytes_billed.NAME: missing_maximum_bytes_billed.check,
}

ALL_RULES: dict[str, Rule] = {**REFERENCE_RULES, **COST_RULES}
