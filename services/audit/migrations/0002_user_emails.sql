-- Each user's address as audit last learnt it from their facts (created, updated, logged in,
-- deleted): a role's fact names its user by id only, and its sentence names them as the others
-- do ("email" (id)); an email change names the address it changed from. Learnt from facts
-- handled from now on: a user none of whose facts came since is unknown (read by id).
create table user_emails (
  user_id text primary key,
  -- Null once the user was purged: their address is not kept after them.
  email text,
  -- The time of the fact it comes from: an older fact handled later (a redelivery, another
  -- instance's batch) does not bring back an older address.
  as_of timestamptz not null
);
