-- Audit: one activity per fact, written by the fact consumer, read by admins.
create table activities (
  id bigserial primary key,
  -- The fact's id: a fact delivered twice (a lost ack, a re-publish after JetStream's
  -- de-duplication window) is still written once.
  fact_id uuid not null unique,
  -- "email (id)" of the acting user, or "system".
  actor text not null,
  actor_id text,
  -- When the change happened (the fact's occurredAt), not when audit processed it.
  occurred_at timestamptz not null,
  action text not null,
  service text not null,
  type text not null,
  verb text not null,
  resource_type text not null,
  resource_id text not null,
  recorded_at timestamptz not null default now()
);
-- The log is read newest first, by time range, and by actor.
create index activities_occurred_at on activities (occurred_at, id);
create index activities_actor on activities (actor, id);
