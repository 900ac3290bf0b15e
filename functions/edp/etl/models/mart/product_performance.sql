-- mart.product_performance: views, carts, purchases, units, revenue and refunds per product,
-- currency and day.
--
-- Definitions:
-- * A purchase is counted once per transaction_id: its first purchase event (event time, then
--   event_id). A copy the client re-sent under a new event_id, the same day or up to 90 days
--   later (after midnight too), is the same purchase and adds nothing.
-- * Each line of the purchase's items[] counts: two lines with the same item_id (two colours of
--   one product) are two lines, their units and amounts add up. purchases counts the distinct
--   transactions that hold the product; line amount = price x quantity (quantity 1 if absent).
-- * Refunds are counted per transaction line, once: a refund with items refunds the lines it
--   names (the n-th line of an item_id refunds the purchase's n-th line of it); a refund without
--   items (a full refund) refunds every line of the transaction's purchase (found up to 90 days
--   back; older purchases' full refunds reach orders_daily only). A line refunded twice (a
--   re-sent refund, a full refund after a partial one) counts at the first refund; two partial
--   refunds of one line count the first. Refunds count on the day of the refund.
-- * Currencies are reported, not converted: one row per (day, product, currency), money in that
--   currency. Views and carts count in the currency the event carried; an event without one is
--   taken to be in @reporting_currency (EDP_ETL_REPORTING_CURRENCY, as GA4 assumes the
--   property's currency). Sum money across rows of one currency only.
-- * People are persons (user id, else the stitched user id, else the anonymous id: see
--   staging.user_identities). view_to_purchase_rate = purchasers / viewers: 0 for a product
--   viewed and never bought, NULL only when nobody viewed it.
-- Bot and test traffic is excluded.
--
-- config: {partition_by: report_date, strategy: insert_overwrite}

with

identities as (

    select
        anonymous_id,
        person_key
    from staging.user_identities

),

commerce_events as (

    -- the window's views and carts, plus purchases and refunds of the 90 days before it (the
    -- history the transaction dedup and full refunds need)
    select
        events.event_date,
        events.event_type,
        events.event_timestamp,
        events.event_id,
        coalesce(events.user_id, identities.person_key, events.user_key) as person_key,
        coalesce(events.transaction_id, events.event_id) as transaction_key,
        coalesce(events.currency, @reporting_currency) as currency,
        events.items
    from staging.user_events as events
    left join identities
        on identities.anonymous_id = events.anonymous_id
    where events.event_date between date_sub(@start, interval 90 day) and @end
      and (
          events.event_type in ('purchase', 'refund')
          or (events.event_type in ('view_item', 'add_to_cart') and events.event_date >= @start)
      )
      and not events.is_bot
      and not events.is_test

),

engagement_lines as (

    select
        events.event_date as report_date,
        events.event_type,
        events.event_timestamp,
        events.event_id,
        events.person_key,
        events.currency,
        item.item_id,
        item.item_name,
        item.item_category,
        item_offset as line_number
    from commerce_events as events
    cross join unnest(events.items) as item with offset as item_offset
    where events.event_type in ('view_item', 'add_to_cart')
      and item.item_id is not null

),

purchases as (

    -- one purchase event per transaction: the first (a re-sent copy is the same purchase)
    select *
    from commerce_events as events
    where event_type = 'purchase'
    qualify row_number() over (
        partition by transaction_key order by event_timestamp, event_id
    ) = 1

),

purchase_lines as (

    select
        purchases.event_date as report_date,
        purchases.event_timestamp,
        purchases.event_id,
        purchases.transaction_key,
        purchases.person_key,
        purchases.currency,
        item.item_id,
        item.item_name,
        item.item_category,
        item_offset as line_number,
        coalesce(item.quantity, 1) as quantity,
        cast(item.price as numeric) * coalesce(item.quantity, 1) as line_amount
    from purchases
    cross join unnest(purchases.items) as item with offset as item_offset
    where item.item_id is not null

),

numbered_purchase_lines as (

    -- the n-th line of an item_id in its purchase (what a refund line of that item matches)
    select
        *,
        row_number() over (
            partition by transaction_key, item_id order by line_number
        ) as occurrence
    from purchase_lines

),

refunds as (

    select *
    from commerce_events as events
    where event_type = 'refund'

),

named_refund_lines as (

    select
        refunds.event_date as report_date,
        refunds.event_timestamp,
        refunds.event_id,
        refunds.transaction_key,
        refunds.currency,
        item.item_id,
        item.item_name,
        item.item_category,
        row_number() over (
            partition by refunds.event_id, item.item_id order by item_offset
        ) as occurrence,
        coalesce(item.quantity, 1) as quantity,
        cast(item.price as numeric) * coalesce(item.quantity, 1) as line_amount
    from refunds
    cross join unnest(refunds.items) as item with offset as item_offset
    where item.item_id is not null

),

full_refund_lines as (

    -- a refund without items refunds every line of the transaction's purchase
    select
        refunds.event_date as report_date,
        refunds.event_timestamp,
        refunds.event_id,
        refunds.transaction_key,
        numbered_purchase_lines.currency,
        numbered_purchase_lines.item_id,
        numbered_purchase_lines.item_name,
        numbered_purchase_lines.item_category,
        numbered_purchase_lines.occurrence,
        numbered_purchase_lines.quantity,
        numbered_purchase_lines.line_amount
    from refunds
    inner join numbered_purchase_lines
        on numbered_purchase_lines.transaction_key = refunds.transaction_key
    where coalesce(array_length(refunds.items), 0) = 0

),

refund_lines as (

    -- each transaction line is refunded once, by the first refund naming it
    select *
    from (
        select * from named_refund_lines
        union all
        select * from full_refund_lines
    )
    qualify row_number() over (
        partition by transaction_key, item_id, occurrence
        order by event_timestamp, event_id
    ) = 1

),

engagement as (

    select
        report_date,
        item_id,
        currency,
        countif(event_type = 'view_item') as views,
        count(distinct if(event_type = 'view_item', person_key, null)) as viewers,
        countif(event_type = 'add_to_cart') as add_to_carts
    from engagement_lines
    group by report_date, item_id, currency

),

sales as (

    select
        report_date,
        item_id,
        currency,
        count(distinct transaction_key) as purchases,
        count(distinct person_key) as purchasers,
        sum(quantity) as units_sold,
        sum(line_amount) as revenue
    from numbered_purchase_lines
    where report_date between @start and @end
    group by report_date, item_id, currency

),

refunded as (

    select
        report_date,
        item_id,
        currency,
        count(distinct transaction_key) as refunds,
        sum(quantity) as units_refunded,
        sum(line_amount) as refunded_revenue
    from refund_lines
    where report_date between @start and @end
    group by report_date, item_id, currency

),

rows_of_the_window as (

    select report_date, item_id, currency from engagement
    union distinct
    select report_date, item_id, currency from sales
    union distinct
    select report_date, item_id, currency from refunded

),

labels as (

    -- the most recent name and category seen that day (catalogue renames happen)
    select
        report_date,
        item_id,
        item_name,
        item_category
    from (
        select report_date, item_id, item_name, item_category, event_timestamp, event_id,
            line_number as line
        from engagement_lines
        union all
        select report_date, item_id, item_name, item_category, event_timestamp, event_id,
            line_number as line
        from numbered_purchase_lines
        where report_date between @start and @end
        union all
        select report_date, item_id, item_name, item_category, event_timestamp, event_id,
            occurrence as line
        from refund_lines
        where report_date between @start and @end
    )
    qualify row_number() over (
        partition by report_date, item_id
        order by event_timestamp desc, event_id desc, line desc
    ) = 1

),

final as (

    select
        rows_of_the_window.report_date,
        rows_of_the_window.item_id,
        rows_of_the_window.currency,
        labels.item_name,
        labels.item_category,
        coalesce(engagement.views, 0) as views,
        coalesce(engagement.viewers, 0) as viewers,
        coalesce(engagement.add_to_carts, 0) as add_to_carts,
        coalesce(sales.purchases, 0) as purchases,
        coalesce(sales.purchasers, 0) as purchasers,
        coalesce(sales.units_sold, 0) as units_sold,
        coalesce(sales.revenue, 0) as revenue,
        coalesce(refunded.refunds, 0) as refunds,
        coalesce(refunded.units_refunded, 0) as units_refunded,
        coalesce(refunded.refunded_revenue, 0) as refunded_revenue,
        coalesce(sales.revenue, 0) - coalesce(refunded.refunded_revenue, 0) as net_revenue,
        safe_divide(coalesce(sales.purchasers, 0), engagement.viewers) as view_to_purchase_rate
    from rows_of_the_window
    inner join labels
        on labels.report_date = rows_of_the_window.report_date
        and labels.item_id = rows_of_the_window.item_id
    left join engagement
        on engagement.report_date = rows_of_the_window.report_date
        and engagement.item_id = rows_of_the_window.item_id
        and engagement.currency = rows_of_the_window.currency
    left join sales
        on sales.report_date = rows_of_the_window.report_date
        and sales.item_id = rows_of_the_window.item_id
        and sales.currency = rows_of_the_window.currency
    left join refunded
        on refunded.report_date = rows_of_the_window.report_date
        and refunded.item_id = rows_of_the_window.item_id
        and refunded.currency = rows_of_the_window.currency

)

select * from final
