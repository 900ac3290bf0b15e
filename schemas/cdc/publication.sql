-- The publication Debezium (publication.name, publication.autocreate.mode=disabled) and the
-- local reader stream from. Created once by the schema owner (the replication user needs no
-- CREATE privilege on the database). TRUNCATE is published so the warehouse can see it.
-- The table list is written by `edp schemas build` from the cdc_source declarations (an existing
-- database needs ALTER PUBLICATION edp_cdc ADD TABLE <new table>).
CREATE PUBLICATION edp_cdc
    FOR TABLE shop.inventory, shop.order_items, shop.orders, shop.shipments, shop.debezium_heartbeat
    WITH (publish = 'insert, update, delete, truncate');
