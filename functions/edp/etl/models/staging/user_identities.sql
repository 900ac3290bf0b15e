-- staging.user_identities: anonymous ids stitched to the user id they belong to.
--
-- Rule (GA4's reporting identity is the reference: the user id when there is one, else the
-- device id): an anonymous id seen together with a user id on any event (an identify call, a
-- login, any event carrying both) belongs to that person, for all its events, before and after
-- the login. Every mart counts people by
--     person_key = coalesce(user_id, user_identities.person_key, user_key)
-- so a visitor who browses anonymously and then logs in is one user, one cohort and one funnel
-- journey. Bot and test traffic stitches nothing.
--
-- Limits, stated: an anonymous id seen with two user ids (a shared device) belongs to the first
-- one only (the later user's anonymous events stay theirs only once they log in again with
-- another device id); the marts pick up a new stitch for the days they rewrite, so day rows
-- older than the lookback keep the split count they were written with (a backfill rewrites
-- them); a user id is never merged with another user id.
--
-- Merged on anonymous_id: a row is written only for anonymous ids new to the table or whose
-- stitch moved earlier (a late event, a backfill), so any order of reruns converges: the MERGE
-- is idempotent.
--
-- config: {strategy: merge, unique_key: [anonymous_id]}

with

pairs as (

    select
        anonymous_id,
        user_id,
        event_timestamp,
        event_id
    from staging.user_events
    where event_date between @start and @end
      and user_id is not null
      and anonymous_id is not null
      and not is_bot
      and not is_test

),

window_first as (

    -- the first user id each anonymous id was seen with in the window
    select
        anonymous_id,
        user_id as person_key,
        event_timestamp as stitched_at,
        event_id as stitched_event_id
    from pairs
    qualify row_number() over (
        partition by anonymous_id order by event_timestamp, event_id
    ) = 1

),

known as (

    select
        anonymous_id,
        stitched_at,
        stitched_event_id
    from staging.user_identities
    where anonymous_id in (select anonymous_id from window_first)

),

final as (

    select
        window_first.anonymous_id,
        window_first.person_key,
        window_first.stitched_at,
        window_first.stitched_event_id
    from window_first
    left join known
        on known.anonymous_id = window_first.anonymous_id
    where known.stitched_at is null
       or window_first.stitched_at < known.stitched_at
       or (window_first.stitched_at = known.stitched_at
           and window_first.stitched_event_id < known.stitched_event_id)

)

select * from final
