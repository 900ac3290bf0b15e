-- Checks of mart.conversion_funnel, on the partitions a run wrote (each returns violations).

-- check: closed_funnel_narrows
-- a closed funnel can only lose journeys from one step to the next
select report_date, device_type, basis
from mart.conversion_funnel
where report_date between @start and @end
  and not (viewed >= added_to_cart and added_to_cart >= began_checkout
           and began_checkout >= purchased and purchased >= 0)
