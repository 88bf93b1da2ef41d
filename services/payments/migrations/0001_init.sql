-- Payments: one Stripe Connect authorization per event, secrets sealed with AES-256-GCM
-- (see crypto.ts), and the ids of Stripe webhook events already handled.

create table stripe_authorizations (
  id bigserial primary key,
  -- The catalog's event id (the catalog owns events; no foreign key across services).
  -- Unique: one authorization per event, whatever races the application code loses.
  event_id bigint not null unique,
  stripe_publishable_key text not null,
  -- version | iv | ciphertext+tag, never plaintext.
  access_token bytea not null,
  refresh_token bytea,
  stripe_user_id bytea not null,
  -- Keyed HMAC of the account id: finds authorizations by account without storing it in clear.
  account_lookup text not null,
  scope text,
  livemode boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index stripe_authorizations_account on stripe_authorizations (account_lookup);

create table stripe_webhook_events (
  id text primary key,
  type text not null,
  received_at timestamptz not null default now()
);
