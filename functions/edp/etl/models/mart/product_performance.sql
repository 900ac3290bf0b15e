-- mart.product_performance: views, carts, purchases, units, revenue and refunds per product and day.
--
-- Purchases and refunds are counted per transaction: a client that re-sends a purchase under a
-- new event_id (so staging's event_id dedup cannot catch it) still sells the units once.
--
-- config: {partition_by: report_date, strategy: insert_overwrite}

with

item_events as (

    select
        events.event_date as report_date,
        events.event_type,
        events.event_timestamp,
        events.event_id,
        events.user_key,
        coalesce(events.transaction_id, events.event_id) as transaction_key,
        item.item_id,
        item.item_name,
        item.item_category,
        coalesce(item.quantity, 1) as quantity,
        cast(item.price as numeric) * coalesce(item.quantity, 1) as line_amount
    from staging.user_events as events
    cross join unnest(events.items) as item
    where events.event_date between @start and @end
      and events.event_type in ('view_item', 'add_to_cart', 'purchase', 'refund')
      and item.item_id is not null
      and not events.is_bot
      and not events.is_test

),

transaction_lines as (

    -- one line per (transaction, product): the first copy of a re-sent purchase or refund
    select
        report_date,
        event_type,
        transaction_key,
        item_id,
        user_key,
        quantity,
        line_amount
    from item_events
    where event_type in ('purchase', 'refund')
    qualify row_number() over (
        partition by report_date, event_type, transaction_key, item_id
        order by event_timestamp, event_id
    ) = 1

),

engagement as (

    select
        report_date,
        item_id,
        countif(event_type = 'view_item') as views,
        count(distinct if(event_type = 'view_item', user_key, null)) as viewers,
        countif(event_type = 'add_to_cart') as add_to_carts
    from item_events
    group by report_date, item_id

),

sales as (

    select
        report_date,
        item_id,
        count(distinct if(event_type = 'purchase', transaction_key, null)) as purchases,
        count(distinct if(event_type = 'purchase', user_key, null)) as purchasers,
        sum(if(event_type = 'purchase', quantity, 0)) as units_sold,
        sum(if(event_type = 'purchase', line_amount, 0)) as revenue,
        count(distinct if(event_type = 'refund', transaction_key, null)) as refunds,
        sum(if(event_type = 'refund', quantity, 0)) as units_refunded,
        sum(if(event_type = 'refund', line_amount, 0)) as refunded_revenue
    from transaction_lines
    group by report_date, item_id

),

labels as (

    -- the most recent name and category seen that day (catalogue renames happen)
    select
        report_date,
        item_id,
        item_name,
        item_category
    from item_events
    qualify row_number() over (
        partition by report_date, item_id order by event_timestamp desc, event_id desc
    ) = 1

),

final as (

    select
        labels.report_date,
        labels.item_id,
        labels.item_name,
        labels.item_category,
        coalesce(engagement.views, 0) as views,
        coalesce(engagement.viewers, 0) as viewers,
        coalesce(engagement.add_to_carts, 0) as add_to_carts,
        coalesce(sales.purchases, 0) as purchases,
        coalesce(sales.purchasers, 0) as purchasers,
        coalesce(sales.units_sold, 0) as units_sold,
        coalesce(sales.revenue, 0) as revenue,
        coalesce(sales.refunds, 0) as refunds,
        coalesce(sales.units_refunded, 0) as units_refunded,
        coalesce(sales.refunded_revenue, 0) as refunded_revenue,
        coalesce(sales.revenue, 0) - coalesce(sales.refunded_revenue, 0) as net_revenue,
        safe_divide(sales.purchasers, engagement.viewers) as view_to_purchase_rate
    from labels
    left join engagement
        on engagement.report_date = labels.report_date
        and engagement.item_id = labels.item_id
    left join sales
        on sales.report_date = labels.report_date
        and sales.item_id = labels.item_id

)

select * from final
