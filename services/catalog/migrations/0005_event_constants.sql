-- Attributes an event shows with a constant value, because the original's clients read them (no
-- online events, featuring, external pages or images here): `is-event-online` and `is-featured`
-- are false, `external-event-url` and the image URLs null. Columns, so that lists filter and sort
-- on them like on any attribute an event shows (a filter on one was a 400; the web client's home
-- page asks `is-featured eq true` and `logo-url ne null`).
alter table events
  add column is_event_online boolean not null generated always as (false) stored,
  add column is_featured boolean not null generated always as (false) stored,
  add column external_event_url text generated always as (null::text) stored,
  add column logo_url text generated always as (null::text) stored,
  add column original_image_url text generated always as (null::text) stored,
  add column thumbnail_image_url text generated always as (null::text) stored,
  add column large_image_url text generated always as (null::text) stored,
  add column icon_image_url text generated always as (null::text) stored;
