-- staging.order_items: current state of shop.order_items, rebuilt from its CDC change log.
--
-- One row per primary key (order_id, line_no): the latest version by (lsn, tx_position), whatever order
-- or how many times Pub/Sub delivered the changes (duplicates share a change_id and rank alike).
-- A delete's latest version removes the key; a TRUNCATE removes every version older than it.
--
-- config: {strategy: replace, owner: cdc}

with

changes as (

    -- the columns the rebuild uses, not *: BigQuery bills every column a query names
    select
        order_id,
        line_no,
        product_id,
        product_name,
        quantity,
        unit_price,
        line_total,
        op,
        lsn,
        tx_position,
        source_ts,
        ingested_at
    from raw.cdc_order_items

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
            partition by order_id, line_no
            order by lsn desc, tx_position desc, ingested_at desc
        ) as version_rank
    from changes
    where op != 't'

),

final as (

    select
        order_id,
        line_no,
        product_id,
        product_name,
        quantity,
        unit_price,
        line_total,
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
