-- Attributes a user and a role show with a constant value, because the original's clients read
-- them: a user's `is-sales-admin` and `is-marketer` (false: no such system roles here) and image
-- URLs (null: no images), a role's `deleted-at` (null: roles are fixed). Columns, so that lists
-- filter and sort on them like on any attribute they show (each was a 400 "unknown field").
alter table users
  add column is_sales_admin boolean not null generated always as (false) stored,
  add column is_marketer boolean not null generated always as (false) stored,
  add column avatar_url text generated always as (null::text) stored,
  add column original_image_url text generated always as (null::text) stored,
  add column thumbnail_image_url text generated always as (null::text) stored,
  add column small_image_url text generated always as (null::text) stored,
  add column icon_image_url text generated always as (null::text) stored;

alter table roles add column deleted_at timestamptz generated always as (null::timestamptz) stored;
