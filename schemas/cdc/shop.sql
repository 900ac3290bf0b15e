-- The shop's source database (Cloud SQL for PostgreSQL in production, a throwaway PostgreSQL 15
-- locally): the operational tables whose changes CDC captures.
--
-- Rules CDC relies on:
--   * every table has a primary key: the change key (Pub/Sub ordering key, staging dedup key)
--     is read from the catalog's primary key, never from the replica identity;
--   * REPLICA IDENTITY FULL: updates and deletes carry the full before-image (Debezium `before`);
--   * money is numeric(p, s) (exact; Debezium encodes it as a scaled Decimal), instants are
--     timestamptz, calendar days are date; the one wall-clock `timestamp` column is there on
--     purpose (a carrier label printed in warehouse local time) and exercises Debezium's
--     MicroTimestamp encoding;
--   * no foreign keys: the simulator deletes and truncates tables independently, and the
--     warehouse never relies on source-side referential integrity anyway.
-- Applied idempotently by `edp_tools.cdc.shop.apply_schema`.

CREATE SCHEMA IF NOT EXISTS shop;

CREATE TABLE IF NOT EXISTS shop.orders (
    order_id        bigint        PRIMARY KEY,
    order_uuid      uuid          NOT NULL,
    user_id         bigint        NOT NULL,
    status          varchar(16)   NOT NULL
        CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded')),
    currency        char(3)       NOT NULL DEFAULT 'KRW',
    subtotal        numeric(12,2) NOT NULL,
    discount        numeric(12,2) NOT NULL DEFAULT 0,
    shipping_fee    numeric(12,2) NOT NULL DEFAULT 0,
    total_amount    numeric(12,2) NOT NULL,
    payment_method  text,
    paid_at         timestamptz,
    note            text,
    created_at      timestamptz   NOT NULL,
    updated_at      timestamptz   NOT NULL
);

CREATE TABLE IF NOT EXISTS shop.order_items (
    order_id        bigint        NOT NULL,
    line_no         smallint      NOT NULL,
    product_id      text          NOT NULL,
    product_name    text          NOT NULL,
    quantity        integer       NOT NULL CHECK (quantity > 0),
    unit_price      numeric(12,2) NOT NULL,
    line_total      numeric(14,2) NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE IF NOT EXISTS shop.inventory (
    warehouse_id    text          NOT NULL,
    product_id      text          NOT NULL,
    on_hand         integer       NOT NULL,
    reserved        integer       NOT NULL DEFAULT 0,
    unit_cost       numeric(12,4) NOT NULL,
    weight_kg       double precision,
    is_active       boolean       NOT NULL DEFAULT true,
    last_counted_on date,
    updated_at      timestamptz   NOT NULL,
    PRIMARY KEY (warehouse_id, product_id)
);

CREATE TABLE IF NOT EXISTS shop.shipments (
    shipment_id         bigint        PRIMARY KEY,
    order_id            bigint        NOT NULL,
    carrier             text          NOT NULL,
    tracking_number     text,
    status              varchar(16)   NOT NULL
        CHECK (status IN ('label_created', 'in_transit', 'out_for_delivery', 'delivered',
                          'returned', 'lost')),
    is_express          boolean       NOT NULL DEFAULT false,
    weight_kg           numeric(8,3),
    estimated_delivery  date,
    label_printed_local timestamp,
    shipped_at          timestamptz,
    delivered_at        timestamptz,
    updated_at          timestamptz   NOT NULL
);

-- Written by Debezium's heartbeat.action.query (and by the local reader's heartbeat): a change in
-- a published table lets the slot's confirmed LSN advance even when the shop is idle while other
-- databases of the instance keep writing WAL.
CREATE TABLE IF NOT EXISTS shop.debezium_heartbeat (
    id  integer     PRIMARY KEY,
    ts  timestamptz NOT NULL
);

ALTER TABLE shop.orders             REPLICA IDENTITY FULL;
ALTER TABLE shop.order_items        REPLICA IDENTITY FULL;
ALTER TABLE shop.inventory          REPLICA IDENTITY FULL;
ALTER TABLE shop.shipments          REPLICA IDENTITY FULL;
ALTER TABLE shop.debezium_heartbeat REPLICA IDENTITY FULL;
