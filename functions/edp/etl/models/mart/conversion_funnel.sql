-- mart.conversion_funnel: view -> add_to_cart -> begin_checkout -> purchase, per day and device.
--
-- A closed funnel: each step counts only when it happened at or after the moment the previous
-- step was first reached (an add_to_cart before any view does not make a viewer a carter).
--
-- Definitions:
-- * A person: person_key = user_id, else the user id the anonymous id was stitched to
--   (staging.user_identities), else the anonymous id. A visitor who logs in mid-session keeps
--   one journey: their anonymous and logged-in events share the person and the session id.
-- * A session: (person, session id). Session ids are the client's (GA4-style ids are epoch
--   seconds, so two visitors routinely share one: the person keeps them apart) or staging's
--   derived ones. A session is dated by its first event of any kind (session_start, a screen,
--   a login: not only funnel steps), and all its events count on that day, also those after
--   midnight: a day is read either side, and the next day's run re-processes this one within
--   the lookback, so the session's second half lands in the right row.
-- * User basis: a person's funnel events within one reporting day.
-- Limit: a session id staging derived (the client sent none) is cut per id, so the anonymous
-- and the logged-in halves of such a session are two journeys; client session ids do not split.
-- Bot and test traffic is excluded.
--
-- config: {partition_by: report_date, strategy: insert_overwrite}

with

identities as (

    select
        anonymous_id,
        person_key
    from staging.user_identities

),

window_events as (

    -- duckdb: not materialized (six days of events read twice, for the funnel steps and for
    -- the sessions' first events: each reader's filter and columns prune the read)
    -- a day either side: sessions that started the evening before @start must not be counted
    -- as starting on @start, and sessions of @end may run past midnight
    select
        events.event_date,
        events.event_timestamp,
        events.event_id,
        events.event_type,
        coalesce(events.user_id, identities.person_key, events.user_key) as person_key,
        events.session_id,
        events.device_type
    from staging.user_events as events
    left join identities
        on identities.anonymous_id = events.anonymous_id
    where events.event_date between date_sub(@start, interval 1 day)
        and date_add(@end, interval 1 day)
      and not events.is_bot
      and not events.is_test

),

funnel_events as (

    select
        event_date,
        event_timestamp,
        event_id,
        person_key,
        session_id,
        device_type,
        case
            when event_type in ('page_view', 'view_item') then 1
            when event_type = 'add_to_cart' then 2
            when event_type = 'begin_checkout' then 3
            when event_type = 'purchase' then 4
        end as step
    from window_events
    where event_type in ('page_view', 'view_item', 'add_to_cart', 'begin_checkout', 'purchase')

),

sessions as (

    -- each session's first event of any kind: its day and its device
    select
        person_key,
        session_id,
        event_date as report_date,
        device_type
    from window_events
    qualify row_number() over (
        partition by person_key, session_id order by event_timestamp, event_id
    ) = 1

),

session_journeys as (

    -- every funnel event of a session, on the session's start day
    select
        'session' as basis,
        sessions.report_date,
        concat(funnel_events.person_key, '|', funnel_events.session_id) as journey_id,
        sessions.device_type,
        funnel_events.step,
        funnel_events.event_timestamp
    from funnel_events
    inner join sessions
        on sessions.person_key = funnel_events.person_key
        and sessions.session_id = funnel_events.session_id

),

user_journeys as (

    select
        'user' as basis,
        event_date as report_date,
        person_key as journey_id,
        first_value(device_type) over (
            partition by person_key, event_date order by event_timestamp, event_id
        ) as device_type,
        step,
        event_timestamp
    from funnel_events

),

journeys as (

    select * from session_journeys where report_date between @start and @end
    union all
    select * from user_journeys where report_date between @start and @end

),

reached_view as (

    select
        basis,
        report_date,
        journey_id,
        any_value(device_type) as device_type,
        min(if(step = 1, event_timestamp, null)) as viewed_at
    from journeys
    group by basis, report_date, journey_id

),

reached_cart as (

    select
        reached_view.basis,
        reached_view.report_date,
        reached_view.journey_id,
        min(journeys.event_timestamp) as added_at
    from reached_view
    inner join journeys
        on journeys.basis = reached_view.basis
        and journeys.report_date = reached_view.report_date
        and journeys.journey_id = reached_view.journey_id
    where journeys.step = 2
      and journeys.event_timestamp >= reached_view.viewed_at
    group by 1, 2, 3

),

reached_checkout as (

    select
        reached_cart.basis,
        reached_cart.report_date,
        reached_cart.journey_id,
        min(journeys.event_timestamp) as checkout_at
    from reached_cart
    inner join journeys
        on journeys.basis = reached_cart.basis
        and journeys.report_date = reached_cart.report_date
        and journeys.journey_id = reached_cart.journey_id
    where journeys.step = 3
      and journeys.event_timestamp >= reached_cart.added_at
    group by 1, 2, 3

),

reached_purchase as (

    select distinct
        reached_checkout.basis,
        reached_checkout.report_date,
        reached_checkout.journey_id
    from reached_checkout
    inner join journeys
        on journeys.basis = reached_checkout.basis
        and journeys.report_date = reached_checkout.report_date
        and journeys.journey_id = reached_checkout.journey_id
    where journeys.step = 4
      and journeys.event_timestamp >= reached_checkout.checkout_at

),

journey_steps as (

    select
        reached_view.basis,
        reached_view.report_date,
        reached_view.device_type,
        reached_view.viewed_at is not null as viewed,
        reached_cart.journey_id is not null as added_to_cart,
        reached_checkout.journey_id is not null as began_checkout,
        reached_purchase.journey_id is not null as purchased
    from reached_view
    left join reached_cart
        on reached_cart.basis = reached_view.basis
        and reached_cart.report_date = reached_view.report_date
        and reached_cart.journey_id = reached_view.journey_id
    left join reached_checkout
        on reached_checkout.basis = reached_view.basis
        and reached_checkout.report_date = reached_view.report_date
        and reached_checkout.journey_id = reached_view.journey_id
    left join reached_purchase
        on reached_purchase.basis = reached_view.basis
        and reached_purchase.report_date = reached_view.report_date
        and reached_purchase.journey_id = reached_view.journey_id

),

counted as (

    select
        report_date,
        coalesce(device_type, 'all') as device_type,
        basis,
        countif(viewed) as viewed,
        countif(added_to_cart) as added_to_cart,
        countif(began_checkout) as began_checkout,
        countif(purchased) as purchased
    from journey_steps
    group by grouping sets ((report_date, basis, device_type), (report_date, basis))

),

final as (

    select
        report_date,
        device_type,
        basis,
        viewed,
        added_to_cart,
        began_checkout,
        purchased,
        safe_divide(added_to_cart, viewed) as view_to_cart_rate,
        safe_divide(began_checkout, added_to_cart) as cart_to_checkout_rate,
        safe_divide(purchased, began_checkout) as checkout_to_purchase_rate,
        safe_divide(purchased, viewed) as overall_conversion_rate
    from counted

)

select * from final
