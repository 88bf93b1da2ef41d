-- The keyed digest (SecretBox `digest`, HMAC-SHA-256 under PAYMENTS_ENCRYPTION_KEY) of the
-- authorization code last exchanged for the row: a PATCH that sends that code again (the
-- frontend's event wizard does, on every save after the link) answers the row as it is instead of
-- spending the code a second time at Stripe. Never the code itself. Null for rows linked before
-- this column existed: their PATCH exchanges whatever code it carries, as before.
alter table stripe_authorizations add column code_digest text;
