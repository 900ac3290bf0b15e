-- mart.daily_active_users: DAU, WAU, MAU, new vs returning, by device type and platform.
--
-- For each reporting day D in [@start, @end]: DAU counts users active on D, WAU over
-- [D - 6, D], MAU over [D - 29, D]. A user active on two devices counts once in each device's
-- row and once in the 'all' rows (distinct counts per grouping set, never sums of rows).
--
-- Definitions:
-- * A user is a person: person_key = user_id, else the user id the anonymous id was stitched
--   to (staging.user_identities), else the anonymous id. A visitor who browses anonymously and
--   logs in later that day is one daily user and one new user.
-- * Active: at least one client-originated event that day (staging is_client_event: sent from
--   the user's web/iOS/Android client, not a refund); server-side events (order updates,
--   refunds, relays) never make anyone active. Bot and test traffic is excluded.
-- * New: the person's first-seen day (the earliest first_seen_date of any of their ids) is D.
--
-- config: {partition_by: report_date, strategy: insert_overwrite}

with

identities as (

    select
        anonymous_id,
        person_key
    from staging.user_identities

),

activity as (

    -- one row per person, day, device and platform: all the rolling counts need
    select distinct
        coalesce(events.user_id, identities.person_key, events.user_key) as person_key,
        events.event_date as activity_date,
        events.device_type,
        events.platform
    from staging.user_events as events
    left join identities
        on identities.anonymous_id = events.anonymous_id
    where events.event_date between date_sub(@start, interval 29 day) and @end
      and events.is_client_event
      and not events.is_bot
      and not events.is_test

),

first_seen as (

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

report_days as (

    select report_date
    from unnest(generate_date_array(@start, @end)) as report_date

),

activity_in_range as (

    -- every activity row paired with each reporting day whose 30-day range it falls in
    select
        report_days.report_date,
        activity.person_key,
        activity.device_type,
        activity.platform,
        date_diff(report_days.report_date, activity.activity_date, day) as days_ago,
        first_seen.first_seen_date
    from activity
    inner join report_days
        on activity.activity_date between date_sub(report_days.report_date, interval 29 day)
            and report_days.report_date
    left join first_seen
        on first_seen.person_key = activity.person_key

),

counted as (

    select
        report_date,
        coalesce(device_type, 'all') as device_type,
        coalesce(platform, 'all') as platform,
        count(distinct if(days_ago = 0, person_key, null)) as dau,
        count(distinct if(days_ago < 7, person_key, null)) as wau,
        count(distinct person_key) as mau,
        count(distinct if(days_ago = 0 and first_seen_date = report_date, person_key, null))
            as new_users
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
