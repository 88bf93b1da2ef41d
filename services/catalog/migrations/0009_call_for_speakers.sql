-- An event's `is-sessions-speakers-enabled` (the original's: whether it has a call for speakers),
-- always false: there are no sessions, speakers or calls for speakers here. A column, as the other
-- constants an event shows (0005), so that lists filter and sort on it: open-event-frontend's
-- explore page filters on it ("Call for speakers: Open / Closed"), which was a 400 "unknown field"
-- that failed the whole list.
alter table events
  add column is_sessions_speakers_enabled boolean not null generated always as (false) stored;
