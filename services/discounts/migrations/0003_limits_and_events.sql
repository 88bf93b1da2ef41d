-- The per-order cap never exceeds the total uses, in the database too: a rule checked only in
-- the handler can be broken by two requests at once. Rows that already break it are repaired
-- first (the per-order limits shrink to the total uses).
update discount_codes
  set max_quantity = tickets_number, min_quantity = least(min_quantity, tickets_number)
  where tickets_number is not null and tickets_number < max_quantity;
alter table discount_codes add constraint discount_codes_tickets_number_max_quantity
  check (tickets_number is null or tickets_number >= max_quantity);

-- What the anonymous checkout lookup needs to know of the catalog's events, fed by the catalog's
-- event facts. `changed_at` is the fact's time: an older fact never overwrites a newer one, and a
-- deleted event stays deleted. Rows written from a live catalog answer (an event the facts have
-- not brought yet) get '-infinity', so any fact wins over them.
create table catalog_events (
  id bigint primary key,
  identifier text not null,
  state text not null,
  deleted boolean not null default false,
  changed_at timestamptz not null
);
create index catalog_events_identifier on catalog_events (identifier);
