-- An event's payment currency (`payment-currency`), as the original stored it and its clients
-- read and send it: open-event-frontend's wizard sends one (USD unless chosen), and its currency
-- display shows "0.00" for every amount of an event without one. An ISO 4217 code, three letters
-- upper-cased (the API checks the form; any such code is taken, as the original took any string);
-- null when none was sent, as in the original, which had no default. Existing events have none.
alter table events add column payment_currency text
  constraint events_payment_currency_code check (payment_currency ~ '^[A-Z]{3}$');
