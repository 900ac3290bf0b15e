-- staging.user_events: raw behaviour events made fit for analysis.
--
-- One row per event_id (the most recently ingested copy wins: a client retry or a redelivered
-- Pub/Sub message must count once), labels normalised, a session id on every event and bot/test
-- traffic flagged (kept, so the quality agent can still see it; every mart filters it out).
--
-- Definitions:
-- * is_client_event: the event came from the user's own device (platform web, ios or android)
--   and is not a refund. Only these make a user active (DAU, first seen, retention); server-side
--   sources (order updates, relays without a client platform) and refunds never do.
-- * A user_key is one identifier (user_id, else anonymous_id); the marts count people through
--   staging.user_identities (anonymous ids stitched to the user id they logged in as).
--
-- Incremental: a run for day @end rewrites the event_date partitions [@start, @end]
-- (@start = @end - lookback), which is how events that arrive up to the lookback late are
-- picked up. One extra day before @start is read as context only, so a session that began the
-- evening before the window gets the same derived id it got when that evening was processed.
--
-- Shaped for a 2.84 M-event day: window functions run over the duplicated minority and the
-- events without a client session only, the reporting day comes from one time-zone
-- conversion per day (a join on day boundaries), not one per event, and the day's wide rows
-- are never materialised by the local engine (the `duckdb: not materialized` hints: each
-- reader takes only the columns and rows it needs, as BigQuery's inlined CTEs do).
--
-- config: {partition_by: event_date, strategy: insert_overwrite}

with

reporting_days as (

    -- the days read (context day included) as UTC instants [starts_at, ends_at)
    select
        day as event_date,
        timestamp(day, @tz) as starts_at,
        timestamp(date_add(day, interval 1 day), @tz) as ends_at
    from unnest(generate_date_array(date_sub(@start, interval 1 day), @end)) as day

),

source as (

    -- duckdb: not materialized (this CTE and the two below are a day of wide rows read three
    -- times, each time for a few columns or a few rows: materialised, they spilled gigabytes)
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
        -- the one thing read from the free-form params: carried as a flag, not as JSON text
        coalesce(json_value(params, '$.debug_mode'), 'false') in ('true', '1') as debug_mode
    from raw.user_events
    -- partition pruning on raw: the window in the reporting time zone, plus the context day
    where event_timestamp >= timestamp(date_sub(@start, interval 1 day), @tz)
      and event_timestamp < timestamp(date_add(@end, interval 1 day), @tz)
      and event_id is not null

),

duplicated as (

    -- the event ids delivered more than once (a few per cent of a day at most)
    select
        event_id,
        count(*) as copies_received
    from source
    group by event_id
    having count(*) > 1

),

deduplicated as (

    -- duckdb: not materialized
    -- most events arrive once and pass straight through (a lookup in the small duplicated
    -- set, not a join with a count for every event) ...
    select
        source.*,
        1 as copies_received
    from source
    left join duplicated
        on duplicated.event_id = source.event_id
    where duplicated.event_id is null

    union all

    -- ... the duplicated minority keeps its latest-ingested copy (ties: the later event time)
    select
        source.*,
        duplicated.copies_received
    from source
    inner join duplicated
        on duplicated.event_id = source.event_id
    qualify row_number() over (
        partition by source.event_id
        order by source.ingested_at desc, source.event_timestamp desc, source.event_type
    ) = 1

),

normalised as (

    -- duckdb: not materialized
    select
        -- ids
        deduplicated.event_id,
        lower(trim(deduplicated.event_type)) as event_type,
        nullif(trim(deduplicated.user_id), '') as user_id,
        nullif(trim(deduplicated.anonymous_id), '') as anonymous_id,
        coalesce(
            nullif(trim(deduplicated.user_id), ''),
            nullif(trim(deduplicated.anonymous_id), ''),
            deduplicated.event_id
        ) as user_key,
        nullif(trim(deduplicated.session_id), '') as client_session_id,

        -- time
        reporting_days.event_date,
        deduplicated.event_timestamp,
        deduplicated.ingested_at,

        -- client: ingest derives both from the user agent; older clients and the Segment API
        -- send variants
        case
            when lower(trim(deduplicated.device_type)) in ('mobile', 'phone', 'smartphone')
                then 'mobile'
            when lower(trim(deduplicated.device_type)) in ('tablet', 'ipad') then 'tablet'
            when lower(trim(deduplicated.device_type)) in ('desktop', 'pc', 'laptop')
                then 'desktop'
            when lower(trim(deduplicated.device_type)) = 'bot' then 'bot'
            else 'unknown'
        end as device_type,
        case
            when lower(trim(deduplicated.platform)) in ('web', 'browser', 'mobile_web') then 'web'
            when lower(trim(deduplicated.platform)) in ('ios', 'iphone', 'ipados') then 'ios'
            when lower(trim(deduplicated.platform)) = 'android' then 'android'
            when lower(trim(deduplicated.platform)) = 'server' then 'server'
            else 'other'
        end as platform,
        deduplicated.page_location,

        -- commerce
        nullif(trim(deduplicated.transaction_id), '') as transaction_id,
        cast(deduplicated.value as numeric) as value,
        upper(trim(deduplicated.currency)) as currency,
        deduplicated.items,

        -- inputs of the traffic flags
        lower(coalesce(deduplicated.user_agent, '')) as user_agent,
        deduplicated.debug_mode,
        deduplicated.copies_received
    from deduplicated
    inner join reporting_days
        on deduplicated.event_timestamp >= reporting_days.starts_at
        and deduplicated.event_timestamp < reporting_days.ends_at

),

-- sessions the client did not send: a new one after @session_timeout_minutes of inactivity
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

sessionised as (

    -- events with the client's session id pass straight through (no join, no window) ...
    select
        * except (client_session_id),
        client_session_id as session_id,
        'client' as session_source
    from normalised
    where client_session_id is not null

    union all

    -- ... the others get '<user_key>:<epoch ms of the session's first event>', stable across reruns
    select
        * except (client_session_id, previous_event_at, session_number),
        concat(
            user_key,
            ':',
            cast(
                unix_millis(min(event_timestamp) over (partition by user_key, session_number))
                as string
            )
        ) as session_id,
        'derived' as session_source
    from session_numbers

),

user_days as (

    select
        user_key,
        event_date,
        count(*) as events_that_day
    from normalised
    group by user_key, event_date

),

final as (

    select
        sessionised.event_date,
        sessionised.event_id,
        sessionised.event_type,
        sessionised.event_timestamp,
        sessionised.ingested_at,
        sessionised.user_id,
        sessionised.anonymous_id,
        sessionised.user_key,
        sessionised.session_id,
        sessionised.session_source,
        sessionised.device_type,
        sessionised.platform,
        sessionised.page_location,
        sessionised.transaction_id,
        sessionised.value,
        sessionised.currency,
        sessionised.items,
        -- substring tests, not a regular expression per event (DuckDB, 1.4 M events: 0.03 s vs 2.6 s)
        sessionised.device_type = 'bot'
            or sessionised.user_agent like '%bot%'
            or sessionised.user_agent like '%crawler%'
            or sessionised.user_agent like '%spider%'
            or sessionised.user_agent like '%slurp%'
            or sessionised.user_agent like '%headless%'
            or sessionised.user_agent like '%python-requests%'
            or sessionised.user_agent like '%curl/%'
            or sessionised.user_agent like '%wget%'
            or user_days.events_that_day > @bot_events_per_day as is_bot,
        sessionised.debug_mode
            or starts_with(lower(coalesce(sessionised.user_id, '')), 'test') as is_test,
        -- user activity: sent from the user's own device; server-side sources (order updates,
        -- relays) and refunds (a merchant's action) never make anyone active
        sessionised.platform in ('web', 'ios', 'android')
            and sessionised.event_type != 'refund' as is_client_event,
        sessionised.copies_received
    from sessionised
    inner join user_days
        on user_days.user_key = sessionised.user_key
        and user_days.event_date = sessionised.event_date
    -- the context day only fed the sessions; it is not ours to rewrite
    where sessionised.event_date between @start and @end

)

select * from final
