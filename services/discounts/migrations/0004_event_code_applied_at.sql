-- When an event code was applied to each event: the handling of an event's deletion leaves an
-- application made well after the deletion was announced (it belongs to the event restored
-- meanwhile), as it leaves such ticket codes (follow_catalog.ts). Applications made before this
-- column existed count as made long ago: a deletion takes them away, as it always did.
alter table discount_code_events add column applied_at timestamptz not null default '-infinity';
alter table discount_code_events alter column applied_at set default now();
