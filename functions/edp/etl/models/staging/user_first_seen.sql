-- staging.user_first_seen: the first reporting day of every (human) user key.
--
-- Per user_key (one id); a person's first day is the earliest over the ids stitched to them
-- (staging.user_identities), taken by the marts. Only client-originated events count (the same
-- definition of activity as daily_active_users): a server-side refund is nobody's first day.
--
-- Merged on user_key: a row is written only for users new to the table or whose first-seen day
-- moved earlier (a late event inside the lookback, or a backfill of an older day). The first
-- day can only ever move earlier, so any order of reruns and backfills converges on the same
-- table: the MERGE is idempotent.
--
-- config: {strategy: merge, unique_key: [user_key]}

with

window_events as (

    select
        user_key,
        event_date,
        event_timestamp,
        event_id,
        device_type,
        platform
    from staging.user_events
    where event_date between @start and @end
      and is_client_event
      and not is_bot
      and not is_test

),

window_first as (

    -- earliest event of each user in the window (event_id breaks timestamp ties)
    select
        user_key,
        event_date as first_seen_date,
        event_timestamp as first_seen_at,
        device_type as first_device_type,
        platform as first_platform
    from window_events
    qualify row_number() over (partition by user_key order by event_timestamp, event_id) = 1

),

known as (

    select
        user_key,
        first_seen_at
    -- sqlreview: allow MissingPartitionFilter because a user's first-seen day can be in any partition: the lookup needs the whole table (one row per user)
    from staging.user_first_seen
    where user_key in (select user_key from window_first)

),

final as (

    select
        window_first.user_key,
        window_first.first_seen_date,
        window_first.first_seen_at,
        window_first.first_device_type,
        window_first.first_platform
    from window_first
    left join known
        on known.user_key = window_first.user_key
    where known.first_seen_at is null
       or window_first.first_seen_at < known.first_seen_at

)

select * from final
