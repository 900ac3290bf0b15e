-- Checks of staging.user_identities (each returns violations).

-- check: no_self_stitch
-- a stitch links two different ids; an anonymous id equal to its person key would mean the
-- staging ids were mixed up
select anonymous_id
from staging.user_identities
where anonymous_id = person_key
