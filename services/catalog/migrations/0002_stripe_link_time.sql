-- When is_stripe_linked last changed (the fact's time): facts from payments may be handled out
-- of order by several catalog instances, and an older fact must not undo a newer one.
alter table events add column stripe_linked_at timestamptz;
