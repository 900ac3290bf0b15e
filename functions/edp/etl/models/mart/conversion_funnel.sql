-- mart.conversion_funnel: view -> add_to_cart -> begin_checkout -> purchase, per day and device.
--
-- A closed funnel: each step counts only when it happened at or after the moment the previous
-- step was first reached (an add_to_cart before any view does not make a viewer a carter).
-- Session basis: a session belongs to the day it started, and all its events count, also those
-- after midnight (one extra day is read either side, and the next day's run re-processes this one within
-- the lookback, so the session's second half lands in the right row). User basis: a user's
-- events within the reporting day.
--
-- config: {partition_by: report_date, strategy: insert_overwrite}

with

funnel_events as (

    select
        event_date,
        event_timestamp,
        event_id,
        user_key,
        session_id,
        device_type,
        case
            when event_type in ('page_view', 'view_item') then 1
            when event_type = 'add_to_cart' then 2
            when event_type = 'begin_checkout' then 3
            when event_type = 'purchase' then 4
        end as step
    from staging.user_events
    -- a day either side: sessions that started the evening before @start must not be counted
    -- as starting on @start, and sessions of @end may run past midnight
    where event_date between date_sub(@start, interval 1 day) and date_add(@end, interval 1 day)
      and event_type in ('page_view', 'view_item', 'add_to_cart', 'begin_checkout', 'purchase')
      and not is_bot
      and not is_test

),

sessions as (

    select
        session_id as journey_id,
        min(event_date) as report_date
    from funnel_events
    group by session_id

),

session_journeys as (

    -- every event of a session, on the session's start day; device of its first event
    select
        'session' as basis,
        sessions.report_date,
        funnel_events.session_id as journey_id,
        first_value(funnel_events.device_type) over (
            partition by funnel_events.session_id
            order by funnel_events.event_timestamp, funnel_events.event_id
        ) as device_type,
        funnel_events.step,
        funnel_events.event_timestamp
    from funnel_events
    inner join sessions
        on sessions.journey_id = funnel_events.session_id

),

user_journeys as (

    select
        'user' as basis,
        event_date as report_date,
        user_key as journey_id,
        first_value(device_type) over (
            partition by user_key, event_date order by event_timestamp, event_id
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
