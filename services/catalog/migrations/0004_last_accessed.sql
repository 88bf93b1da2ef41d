-- When a user last signed in (a login or a fresh login), for the admin users page: its Active and
-- Inactive tabs filter on it and its Last Accessed column sorts on it. Null until a user's first
-- login after this migration. The original stamped it on every authenticated request; here a
-- read does not write, and a token lives a day, so an active user signs in at least that often.
alter table users add column last_accessed_at timestamptz;

-- Every account counts as verified (there is no email verification here; `is-verified` has always
-- been true): a column, so that the same page can sort and filter on it like on any attribute.
alter table users add column is_verified boolean not null generated always as (true) stored;
