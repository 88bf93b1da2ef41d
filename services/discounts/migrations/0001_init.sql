-- Discounts: codes, their tickets, the events an event-kind code is applied to, and redemptions.
-- Events, tickets and users live in the catalog: their ids are plain bigints here (no foreign
-- keys across services); the catalog's facts keep them consistent.

create table discount_codes (
  id bigserial primary key,
  code text not null,
  discount_url text,
  -- Money is exact: two decimals, never a float.
  value numeric(12, 2) not null check (value >= 0),
  type text not null check (type in ('amount', 'percent')),
  is_active boolean not null default true,
  tickets_number integer check (tickets_number >= 0),
  min_quantity integer not null default 1 check (min_quantity >= 0),
  max_quantity integer not null default 100 check (max_quantity >= 0),
  valid_from timestamptz,
  valid_till timestamptz,
  used_for text not null check (used_for in ('event', 'ticket')),
  -- The event of a ticket-kind code; null for event-kind codes.
  event_id bigint,
  -- The creator (a catalog user id), set by the server.
  marketer_id bigint,
  -- Held reservations plus confirmed uses; only the redemption statements change it.
  used_count integer not null default 0 check (used_count >= 0),
  created_at timestamptz not null default now(),
  deleted_at timestamptz,
  check (type <> 'percent' or value <= 100),
  check (min_quantity <= max_quantity),
  check (valid_from is null or valid_till is null or valid_from < valid_till),
  check ((used_for = 'ticket') = (event_id is not null)),
  -- The cap holds in the database too, whatever a future statement forgets.
  check (tickets_number is null or used_count <= tickets_number)
);
-- Unique among the live codes of one event, case-insensitively; event-kind codes among themselves.
create unique index discount_codes_code_live on discount_codes (event_id, lower(code))
  where deleted_at is null and event_id is not null;
create unique index discount_codes_event_kind_code_live on discount_codes (lower(code))
  where deleted_at is null and event_id is null;
create index discount_codes_event on discount_codes (event_id) where deleted_at is null;
create index discount_codes_marketer on discount_codes (marketer_id);

create table discount_code_tickets (
  discount_code_id bigint not null references discount_codes (id) on delete cascade,
  ticket_id bigint not null,
  primary key (discount_code_id, ticket_id)
);
create index discount_code_tickets_ticket on discount_code_tickets (ticket_id);

-- Where an event-kind code is applied: one event code per event (the primary key).
create table discount_code_events (
  event_id bigint primary key,
  discount_code_id bigint not null references discount_codes (id) on delete cascade
);
create index discount_code_events_code on discount_code_events (discount_code_id);

create table redemptions (
  discount_code_id bigint not null references discount_codes (id) on delete cascade,
  order_id text not null,
  quantity integer not null check (quantity >= 1),
  state text not null check (state in ('reserved', 'confirmed', 'released')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (discount_code_id, order_id)
);

-- What every read shows: the code with its ticket and event linkage (ids as text).
create view code_rows as
  select c.*,
    coalesce((select array_agg(t.ticket_id::text order by t.ticket_id)
      from discount_code_tickets t where t.discount_code_id = c.id), '{}') as ticket_ids,
    coalesce((select array_agg(e.event_id::text order by e.event_id)
      from discount_code_events e where e.discount_code_id = c.id), '{}') as event_ids
  from discount_codes c;
