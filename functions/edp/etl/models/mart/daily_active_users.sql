-- mart.daily_active_users: DAU, WAU, MAU, new vs returning, by device type and platform.
--
-- For each reporting day D in [@start, @end]: DAU counts users active on D, WAU over
-- [D - 6, D], MAU over [D - 29, D]. A user active on two devices counts once in each device's
-- row and once in the 'all' rows (distinct counts per grouping set, never sums of rows).
--
-- config: {partition_by: report_date, strategy: insert_overwrite}

with

activity as (

    -- one row per user, day, device and platform: all the rolling counts need
    select distinct
        user_key,
        event_date as activity_date,
        device_type,
        platform
    from staging.user_events
    where event_date between date_sub(@start, interval 29 day) and @end
      and not is_bot
      and not is_test

),

first_seen as (

    select
        user_key,
        first_seen_date
    -- sqlreview: allow MissingPartitionFilter because a user's first-seen day can be in any partition: the lookup needs the whole table (one row per user)
    from staging.user_first_seen

),

report_days as (

    select report_date
    from unnest(generate_date_array(@start, @end)) as report_date

),

activity_in_range as (

    -- every activity row paired with each reporting day whose 30-day range it falls in
    select
        report_days.report_date,
        activity.user_key,
        activity.device_type,
        activity.platform,
        date_diff(report_days.report_date, activity.activity_date, day) as days_ago,
        first_seen.first_seen_date
    from activity
    inner join report_days
        on activity.activity_date between date_sub(report_days.report_date, interval 29 day)
            and report_days.report_date
    left join first_seen
        on first_seen.user_key = activity.user_key

),

counted as (

    select
        report_date,
        coalesce(device_type, 'all') as device_type,
        coalesce(platform, 'all') as platform,
        count(distinct if(days_ago = 0, user_key, null)) as dau,
        count(distinct if(days_ago < 7, user_key, null)) as wau,
        count(distinct user_key) as mau,
        count(distinct if(days_ago = 0 and first_seen_date = report_date, user_key, null)) as new_users
    from activity_in_range
    group by grouping sets (
        (report_date, device_type, platform),
        (report_date, device_type),
        (report_date, platform),
        (report_date)
    )

),

final as (

    select
        report_date,
        device_type,
        platform,
        dau,
        wau,
        mau,
        new_users,
        dau - new_users as returning_users,
        safe_divide(dau, mau) as stickiness
    from counted

)

select * from final
