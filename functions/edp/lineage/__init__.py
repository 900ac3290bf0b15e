"""Column-level lineage of the SQL models, and the OpenLineage run events each model run emits.

* :mod:`edp.lineage.columns` traces one SELECT (sqlglot scopes, the catalogue as schema) to
  field-exact sources with OpenLineage transformation kinds and INDIRECT edges;
* :mod:`edp.lineage.models` does it for every SQL model (daily ETL and CDC staging) and chains
  the models, so a mart column can be followed to the raw columns it comes from;
* :mod:`edp.lineage.openlineage` builds OpenLineage RunEvents with the column-lineage facet and
  sends them to a JSON-lines file or an HTTP endpoint (Marquez, a Dataplex bridge).
"""
