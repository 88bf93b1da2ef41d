-- Catalog: users, roles, events, topics, sub-topics, tickets, event roles.
-- Soft-deleted rows keep deleted_at; uniqueness applies to live rows only.

create table users (
  id bigserial primary key,
  email text not null,
  password_hash text not null,
  first_name text,
  last_name text,
  is_admin boolean not null default false,
  is_super_admin boolean not null default false,
  created_at timestamptz not null default now(),
  deleted_at timestamptz
);
create unique index users_email_live on users (lower(email)) where deleted_at is null;

create table roles (
  name text primary key,
  title_name text not null
);
insert into roles (name, title_name) values
  ('owner', 'Owner'), ('organizer', 'Organizer'), ('coorganizer', 'Co-organizer');

create table event_topics (
  id bigserial primary key,
  name text not null,
  slug text not null,
  system_image_url text,
  created_at timestamptz not null default now(),
  deleted_at timestamptz
);
create unique index event_topics_slug_live on event_topics (slug) where deleted_at is null;

create table event_sub_topics (
  id bigserial primary key,
  name text not null,
  slug text not null,
  event_topic_id bigint not null references event_topics (id) on delete cascade,
  created_at timestamptz not null default now(),
  deleted_at timestamptz
);
create unique index event_sub_topics_slug_live
  on event_sub_topics (event_topic_id, slug) where deleted_at is null;

create table events (
  id bigserial primary key,
  identifier char(8) not null unique,
  name text not null,
  description text,
  location_name text,
  starts_at timestamptz not null,
  ends_at timestamptz not null,
  timezone text not null default 'UTC',
  state text not null default 'draft' check (state in ('draft', 'published')),
  privacy text not null default 'public' check (privacy in ('public', 'private')),
  can_pay_by_stripe boolean not null default false,
  is_stripe_linked boolean not null default false,
  event_topic_id bigint references event_topics (id) on delete set null,
  event_sub_topic_id bigint references event_sub_topics (id) on delete set null,
  owner_id bigint references users (id) on delete set null,
  created_at timestamptz not null default now(),
  deleted_at timestamptz,
  check (ends_at > starts_at)
);
create index events_topic on events (event_topic_id) where deleted_at is null;
create index events_sub_topic on events (event_sub_topic_id) where deleted_at is null;

create table tickets (
  id bigserial primary key,
  event_id bigint not null references events (id) on delete cascade,
  name text not null,
  description text,
  type text not null check (type in ('free', 'paid', 'donation')),
  price numeric(12, 2) not null default 0 check (price >= 0),
  quantity integer not null default 100 check (quantity >= 0),
  sales_starts_at timestamptz,
  sales_ends_at timestamptz,
  created_at timestamptz not null default now(),
  deleted_at timestamptz
);
create index tickets_event on tickets (event_id) where deleted_at is null;

create table users_events_roles (
  id bigserial primary key,
  user_id bigint not null references users (id) on delete cascade,
  event_id bigint not null references events (id) on delete cascade,
  role_name text not null references roles (name),
  created_at timestamptz not null default now(),
  unique (user_id, event_id, role_name)
);
create index users_events_roles_event on users_events_roles (event_id);
