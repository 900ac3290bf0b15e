-- Checks of mart.daily_active_users, on the partitions a run wrote (each returns violations).

-- check: nested_windows
-- a day is inside its week, a week inside its month; new and returning split the day
select report_date, device_type, platform
from mart.daily_active_users
where report_date between @start and @end
  and not (dau <= wau and wau <= mau and new_users + returning_users = dau and new_users >= 0)

-- check: all_row_per_day
-- every reporting day with activity has exactly one 'all' x 'all' row
select report_date
from mart.daily_active_users
where report_date between @start and @end
group by report_date
having countif(device_type = 'all' and platform = 'all') != 1
