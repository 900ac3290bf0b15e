"""SQL cost reviewer: the reference antipatterns plus BigQuery cost rules, each finding priced.

- :mod:`edp.sqlreview.source` parses a text (sqlglot, BigQuery dialect) and locates nodes;
- :mod:`edp.sqlreview.rules` holds one module per rule, ``(statements, context) -> findings``;
- :mod:`edp.sqlreview.reviewer` runs them in order, prices findings, applies suppressions.

Example:
    >>> from edp.sqlreview.reviewer import review_sql
    >>> [f.rule for f in review_sql("SELECT a FROM t ORDER BY a").findings]
    ['OrderByWithoutLimit']
"""
