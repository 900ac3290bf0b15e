-- Checks of staging.user_events, on the partitions a run wrote (each query returns violations).

-- check: event_id_unique
-- the promise of this table: one row per event, however often it was delivered
select
    event_id,
    count(*) as rows_with_it
from staging.user_events
where event_date between @start and @end
group by event_id
having count(*) > 1

-- check: every_event_attributed
-- marts count users and sessions; an event without either would silently vanish from them
select event_id
from staging.user_events
where event_date between @start and @end
  and (user_key is null or session_id is null or copies_received < 1)
