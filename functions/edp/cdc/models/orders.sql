-- staging.orders: current state of shop.orders, rebuilt from its CDC change log.
--
-- One row per primary key (order_id): the latest version by (lsn, tx_position), whatever order
-- or how many times Pub/Sub delivered the changes (duplicates share a change_id and rank alike).
-- A delete's latest version removes the key; a TRUNCATE removes every version older than it.
--
-- config: {strategy: replace, owner: cdc}

with

changes as (

    -- the columns the rebuild uses, not *: BigQuery bills every column a query names
    select
        order_id,
        order_uuid,
        user_id,
        status,
        currency,
        subtotal,
        discount,
        shipping_fee,
        total_amount,
        payment_method,
        paid_at,
        note,
        created_at,
        updated_at,
        op,
        lsn,
        tx_position,
        source_ts,
        ingested_at
    from raw.cdc_orders

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
            partition by order_id
            order by lsn desc, tx_position desc, ingested_at desc
        ) as version_rank
    from changes
    where op != 't'

),

final as (

    select
        order_id,
        order_uuid,
        user_id,
        status,
        currency,
        subtotal,
        discount,
        shipping_fee,
        total_amount,
        payment_method,
        paid_at,
        note,
        created_at,
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
