-- mart.orders_daily: orders, revenue, average order value and status mix per day, from CDC.
--
-- Reads the current state of each order (staging.orders, kept by the CDC flush: latest version
-- per order_id, deletes dropped). An order counts on the day it was created, with the status it
-- has now; re-processing a day inside the lookback picks up its cancellations and refunds.
--
-- Currencies are reported, not converted: one row per (day, currency), every amount in that
-- currency (a shop selling in KRW and USD gets two rows a day; sum money within a currency only).
--
-- config: {partition_by: report_date, strategy: insert_overwrite}

with

orders as (

    select
        order_id,
        user_id,
        lower(status) as status,
        upper(currency) as currency,
        cast(total_amount as numeric) as total_amount,
        date(created_at, @tz) as report_date
    from staging.orders
    where created_at >= timestamp(@start, @tz)
      and created_at < timestamp(date_add(@end, interval 1 day), @tz)

),

final as (

    select
        report_date,
        currency,
        count(*) as orders,
        count(distinct user_id) as customers,
        coalesce(sum(if(status != 'cancelled', total_amount, 0)), 0) as gross_revenue,
        coalesce(sum(if(status = 'refunded', total_amount, 0)), 0) as refunded_revenue,
        coalesce(sum(if(status != 'cancelled', total_amount, 0)), 0)
            - coalesce(sum(if(status = 'refunded', total_amount, 0)), 0) as net_revenue,
        safe_divide(
            sum(if(status != 'cancelled', total_amount, 0)), countif(status != 'cancelled')
        ) as average_order_value,
        countif(status = 'pending') as pending_orders,
        countif(status = 'paid') as paid_orders,
        countif(status = 'shipped') as shipped_orders,
        countif(status = 'delivered') as delivered_orders,
        countif(status = 'cancelled') as cancelled_orders,
        countif(status = 'refunded') as refunded_orders,
        countif(
            status not in ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded')
        ) as other_status_orders
    from orders
    group by report_date, currency

)

select * from final
