-- Event-kind codes may share a text, as the original's did: its one rule was unique (event_id,
-- code), and event-kind codes have no event_id. Nothing finds an event code by its text (the
-- checkout lookup and the price preview read ticket codes), so the index protected no lookup.
drop index if exists discount_codes_event_kind_code_live;
