-- mart.retention_cohorts: day-N and week-N retention of first-seen cohorts.
--
-- Daily rows: for activity day D and each cohort day C in [D - @retention_max_days, D], the
-- users first seen on C that were active on D. Weekly rows: activity_date is the Monday of the
-- activity week, cohorts are first-seen weeks (Monday-based) up to @retention_max_weeks
-- before, and a user counts when active on any day of that week.
--
-- The runner widens @start to the Monday of its week (config window: week) so the weekly row
-- of a partly re-processed week is rebuilt whole; a week's activity is always read in full
-- from staging, so a rerun of any of its days writes the same row.
--
-- Definitions (as in daily_active_users): a user is a person (person_key: user id, else the
-- user id their anonymous id was stitched to, else the anonymous id), so a visitor who logs in
-- after browsing anonymously is one cohort member, in the cohort of their first anonymous day;
-- active means a client-originated event (is_client_event), never a server-side refund.
--
-- config: {partition_by: activity_date, strategy: insert_overwrite, window: week}

with

identities as (

    select
        anonymous_id,
        person_key
    from staging.user_identities

),

people_first_seen as (

    -- a person's first day is the earliest of their ids' first days
    select
        coalesce(identities.person_key, user_first_seen.user_key) as person_key,
        min(user_first_seen.first_seen_date) as first_seen_date
    -- sqlreview: allow MissingPartitionFilter because a person's first-seen day can be in any partition: the lookup needs the whole table (one row per id)
    from staging.user_first_seen
    left join identities
        on identities.anonymous_id = user_first_seen.user_key
    group by 1

),

cohorts as (

    select
        person_key,
        first_seen_date,
        date_trunc(first_seen_date, week(monday)) as first_seen_week
    from people_first_seen

),

activity as (

    select distinct
        coalesce(events.user_id, identities.person_key, events.user_key) as person_key,
        events.event_date as activity_date
    from staging.user_events as events
    left join identities
        on identities.anonymous_id = events.anonymous_id
    -- @start is a Monday, so the last week starting on or before @end is read in full
    where events.event_date between @start and date_add(@end, interval 6 day)
      and events.is_client_event
      and not events.is_bot
      and not events.is_test

),

daily_cohort_sizes as (

    select
        first_seen_date as cohort_start,
        count(*) as cohort_size
    from cohorts
    group by first_seen_date

),

weekly_cohort_sizes as (

    select
        first_seen_week as cohort_start,
        count(*) as cohort_size
    from cohorts
    group by first_seen_week

),

daily_retained as (

    select
        activity.activity_date,
        cohorts.first_seen_date as cohort_start,
        date_diff(activity.activity_date, cohorts.first_seen_date, day) as period_number,
        count(distinct activity.person_key) as retained_users
    from activity
    inner join cohorts
        on cohorts.person_key = activity.person_key
    where activity.activity_date between @start and @end
      and date_diff(activity.activity_date, cohorts.first_seen_date, day)
          between 0 and @retention_max_days
    group by 1, 2, 3

),

weekly_retained as (

    select
        date_trunc(activity.activity_date, week(monday)) as activity_date,
        cohorts.first_seen_week as cohort_start,
        date_diff(
            date_trunc(activity.activity_date, week(monday)), cohorts.first_seen_week, day
        ) / 7 as period_days_over_seven,
        count(distinct activity.person_key) as retained_users
    from activity
    inner join cohorts
        on cohorts.person_key = activity.person_key
    where date_trunc(activity.activity_date, week(monday)) between @start and @end
    group by 1, 2, 3

),

final as (

    select
        daily_retained.activity_date,
        'day' as cohort_grain,
        daily_retained.cohort_start,
        daily_retained.period_number,
        daily_cohort_sizes.cohort_size,
        daily_retained.retained_users,
        safe_divide(daily_retained.retained_users, daily_cohort_sizes.cohort_size) as retention_rate
    from daily_retained
    inner join daily_cohort_sizes
        on daily_cohort_sizes.cohort_start = daily_retained.cohort_start

    union all

    select
        weekly_retained.activity_date,
        'week' as cohort_grain,
        weekly_retained.cohort_start,
        cast(weekly_retained.period_days_over_seven as int64) as period_number,
        weekly_cohort_sizes.cohort_size,
        weekly_retained.retained_users,
        safe_divide(weekly_retained.retained_users, weekly_cohort_sizes.cohort_size) as retention_rate
    from weekly_retained
    inner join weekly_cohort_sizes
        on weekly_cohort_sizes.cohort_start = weekly_retained.cohort_start
    where weekly_retained.period_days_over_seven between 0 and @retention_max_weeks

)

select * from final
