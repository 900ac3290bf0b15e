-- Checks of mart.product_performance, on the partitions a run wrote (each returns violations).

-- check: money_adds_up
select report_date, item_id
from mart.product_performance
where report_date between @start and @end
  and (net_revenue != revenue - refunded_revenue or revenue < 0 or refunded_revenue < 0
       or units_sold < purchases or viewers > views)
