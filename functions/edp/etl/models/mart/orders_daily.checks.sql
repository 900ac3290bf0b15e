-- Checks of mart.orders_daily, on the partitions a run wrote (each returns violations).

-- check: status_mix_adds_up
-- every order is in exactly one status bucket
select report_date
from mart.orders_daily
where report_date between @start and @end
  and orders != pending_orders + paid_orders + shipped_orders + delivered_orders
      + cancelled_orders + refunded_orders + other_status_orders

-- check: net_revenue_consistent
select report_date
from mart.orders_daily
where report_date between @start and @end
  and (net_revenue != gross_revenue - refunded_revenue or refunded_revenue > gross_revenue)
