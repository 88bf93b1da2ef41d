-- The fact outbox (as shared/facts.ts installOutbox makes it), created here under the
-- migration lock: installOutbox's bare `create table if not exists` races when several
-- instances start at once (duplicate key on pg_type_typname_nsp_index).
create table if not exists outbox (
  seq bigserial primary key,
  id uuid not null unique,
  subject text not null,
  payload jsonb not null
);
