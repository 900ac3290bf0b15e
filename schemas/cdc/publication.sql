-- The publication Debezium (publication.name, publication.autocreate.mode=disabled) and the
-- local reader stream from. Created once by the schema owner (the replication user needs no
-- CREATE privilege on the database). TRUNCATE is published so the warehouse can see it.
CREATE PUBLICATION edp_cdc
    FOR TABLE shop.orders, shop.order_items, shop.inventory, shop.shipments,
              shop.debezium_heartbeat
    WITH (publish = 'insert, update, delete, truncate');
