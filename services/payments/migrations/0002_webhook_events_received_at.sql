-- Handled webhook event ids are pruned by age on every insert (store/authorizations.ts).
create index stripe_webhook_events_received_at on stripe_webhook_events (received_at);
