-- staging.user_events: raw behaviour events made fit for analysis.
--
-- One row per event_id (the most recently ingested copy wins: a client retry or a redelivered
-- Pub/Sub message must count once), labels normalised, a session id on every event and bot/test
-- traffic flagged (kept, so the quality agent can still see it; every mart filters it out).
--
-- Incremental: a run for day @end rewrites the event_date partitions [@start, @end]
-- (@start = @end - lookback), which is how events that arrive up to the lookback late are
-- picked up. One extra day before @start is read as context only, so a session that began the
-- evening before the window gets the same derived id it got when that evening was processed.
--
-- config: {partition_by: event_date, strategy: insert_overwrite}

with

source as (

    select
        event_id,
        event_type,
        event_timestamp,
        ingested_at,
        user_id,
        anonymous_id,
        session_id,
        device_type,
        platform,
        page_location,
        transaction_id,
        value,
        currency,
        items,
        user_agent,
        params
    from raw.user_events
    -- partition pruning on raw: the window in the reporting time zone, plus one context day
    where event_timestamp >= timestamp(date_sub(@start, interval 1 day), @tz)
      and event_timestamp < timestamp(date_add(@end, interval 1 day), @tz)

),

deduplicated as (

    select
        *,
        count(*) over (partition by event_id) as copies_received
    from source
    where event_id is not null
      and event_timestamp is not null
    qualify row_number() over (
        partition by event_id
        order by ingested_at desc, event_timestamp desc, event_type
    ) = 1

),

normalised as (

    select
        -- ids
        event_id,
        lower(trim(event_type)) as event_type,
        nullif(trim(user_id), '') as user_id,
        nullif(trim(anonymous_id), '') as anonymous_id,
        coalesce(nullif(trim(user_id), ''), nullif(trim(anonymous_id), ''), event_id) as user_key,
        nullif(trim(session_id), '') as client_session_id,

        -- time
        date(event_timestamp, @tz) as event_date,
        event_timestamp,
        ingested_at,

        -- client
        -- ingest derives both from the user agent; older clients and the Segment API send variants
        case
            when lower(trim(device_type)) in ('mobile', 'phone', 'smartphone') then 'mobile'
            when lower(trim(device_type)) in ('tablet', 'ipad') then 'tablet'
            when lower(trim(device_type)) in ('desktop', 'pc', 'laptop') then 'desktop'
            when lower(trim(device_type)) = 'bot' then 'bot'
            else 'unknown'
        end as device_type,
        case
            when lower(trim(platform)) in ('web', 'browser', 'mobile_web') then 'web'
            when lower(trim(platform)) in ('ios', 'iphone', 'ipados') then 'ios'
            when lower(trim(platform)) = 'android' then 'android'
            when lower(trim(platform)) = 'server' then 'server'
            else 'other'
        end as platform,
        page_location,

        -- commerce
        nullif(trim(transaction_id), '') as transaction_id,
        cast(value as numeric) as value,
        upper(trim(currency)) as currency,
        items,

        -- traffic flags inputs
        lower(coalesce(user_agent, '')) as user_agent,
        coalesce(json_value(params, '$.debug_mode'), 'false') in ('true', '1') as debug_mode,
        copies_received
    from deduplicated

),

-- sessions the client did not send: a new session after @session_timeout_minutes of inactivity
sessionless as (

    select
        *,
        lag(event_timestamp) over (
            partition by user_key order by event_timestamp, event_id
        ) as previous_event_at
    from normalised
    where client_session_id is null

),

session_numbers as (

    select
        *,
        sum(
            case
                when previous_event_at is null then 1
                when timestamp_diff(event_timestamp, previous_event_at, second)
                    >= @session_timeout_minutes * 60 then 1
                else 0
            end
        ) over (
            partition by user_key order by event_timestamp, event_id
            rows between unbounded preceding and current row
        ) as session_number
    from sessionless

),

derived_sessions as (

    select
        * except (previous_event_at, session_number),
        concat(
            user_key, ':',
            cast(unix_millis(min(event_timestamp) over (partition by user_key, session_number)) as string)
        ) as session_id,
        'derived' as session_source
    from session_numbers

),

client_sessions as (

    select
        *,
        client_session_id as session_id,
        'client' as session_source
    from normalised
    where client_session_id is not null

),

sessionised as (

    select * from derived_sessions
    union all
    select * from client_sessions

),

flagged as (

    select
        *,
        device_type = 'bot'
            or regexp_contains(user_agent, r'bot|crawler|spider|slurp|headless|python-requests|curl/|wget')
            or count(*) over (partition by user_key, event_date) > @bot_events_per_day as is_bot,
        debug_mode or starts_with(lower(coalesce(user_id, '')), 'test') as is_test
    from sessionised

),

final as (

    select
        event_date,
        event_id,
        event_type,
        event_timestamp,
        ingested_at,
        user_id,
        anonymous_id,
        user_key,
        session_id,
        session_source,
        device_type,
        platform,
        page_location,
        transaction_id,
        value,
        currency,
        items,
        is_bot,
        is_test,
        copies_received
    from flagged
    -- the context day only fed the sessions; it is not ours to rewrite
    where event_date between @start and @end

)

select * from final
