-- Checks of mart.retention_cohorts, on the partitions a run wrote (each returns violations).

-- check: retained_within_cohort
select activity_date, cohort_grain, cohort_start
from mart.retention_cohorts
where activity_date between @start and @end
  and not (retained_users between 1 and cohort_size and period_number >= 0)

-- check: period_zero_is_everyone
-- a cohort is, by definition, everyone active on (in) its first day (week)
select activity_date, cohort_grain, cohort_start
from mart.retention_cohorts
where activity_date between @start and @end
  and period_number = 0
  and cohort_grain = 'day'
  and retained_users != cohort_size
