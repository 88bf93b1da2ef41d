-- Which tokens of a user are still valid: a token carries the version it was issued under (its
-- `ver` claim; none: 0), and only a token of the current version is accepted. A password set or
-- changed (PATCH, the admin made at start) or a promotion to super admin at start counts it up,
-- so every token issued before is refused. Existing rows start at 0, as tokens issued before
-- this migration read: they stay valid until the next change.
alter table users add column token_version integer not null default 0;
