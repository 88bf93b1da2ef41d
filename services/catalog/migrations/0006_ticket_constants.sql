-- Attributes a ticket shows with a constant value, because the original's order form reads them
-- (no hidden tickets, no per-order minimum here): `is-hidden` false, `min-order` 1 (`max-order`
-- is the `quantity`). Columns, so that lists filter and sort on them like on any attribute a
-- ticket shows (a filter on one was a 400).
alter table tickets
  add column is_hidden boolean not null generated always as (false) stored,
  add column min_order integer not null generated always as (1) stored;
