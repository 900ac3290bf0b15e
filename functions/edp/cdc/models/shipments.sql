-- staging.shipments: current state of shop.shipments, rebuilt from its CDC change log.
--
-- One row per primary key (shipment_id): the latest version by (lsn, tx_position), whatever order
-- or how many times Pub/Sub delivered the changes (duplicates share a change_id and rank alike).
-- A delete's latest version removes the key; a TRUNCATE removes every version older than it.
--
-- config: {strategy: replace, owner: cdc}

with

changes as (

    -- the columns the rebuild uses, not *: BigQuery bills every column a query names
    select
        shipment_id,
        order_id,
        carrier,
        tracking_number,
        status,
        is_express,
        weight_kg,
        estimated_delivery,
        label_printed_local,
        shipped_at,
        delivered_at,
        updated_at,
        op,
        lsn,
        tx_position,
        source_ts,
        ingested_at
    from raw.cdc_shipments

),

truncations as (

    -- a TRUNCATE (op t) hides every version written before it
    select coalesce(max(lsn), -1) as truncated_before_lsn
    from changes
    where op = 't'

),

versions as (

    select
        changes.*,
        row_number() over (
            partition by shipment_id
            order by lsn desc, tx_position desc, ingested_at desc
        ) as version_rank
    from changes
    where op != 't'

),

final as (

    select
        shipment_id,
        order_id,
        carrier,
        tracking_number,
        status,
        is_express,
        weight_kg,
        estimated_delivery,
        label_printed_local,
        shipped_at,
        delivered_at,
        updated_at,
        versions.lsn,
        versions.source_ts,
        versions.ingested_at
    from versions
    cross join truncations
    where versions.version_rank = 1
      and versions.op != 'd'
      and versions.lsn > truncations.truncated_before_lsn

)

select * from final
