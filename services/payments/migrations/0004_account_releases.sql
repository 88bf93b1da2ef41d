-- Accounts to disconnect at Stripe once no authorization uses them: the account a PATCH replaced,
-- or one a link exchanged and could not store. Written in the transaction that replaces the row
-- (or right after the link's rollback) and retried until Stripe is done with it: the release used
-- to be tried once, from memory, and a busy accounts lock or a failing Stripe left the platform
-- connected to an account no row uses.
create table stripe_account_releases (
  id bigserial primary key,
  -- Keyed HMAC of the account id, as stripe_authorizations.account_lookup.
  account_lookup text not null,
  -- The account id, sealed for this table (handlers/accounts.ts), never plaintext.
  stripe_user_id bytea not null,
  attempts integer not null default 0,
  not_before timestamptz not null default now(),
  created_at timestamptz not null default now()
);
create index stripe_account_releases_due on stripe_account_releases (not_before);
