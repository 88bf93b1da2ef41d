/**
 * The catalog's rows as its stores return them (see migrations/). Bigint ids and `numeric`
 * prices arrive as strings (postgres.js), timestamps as `Date`. Object types rather than
 * interfaces so a row still fits where a loose `Row` is taken (fact payloads, `unchanged`).
 */

export type UserRow = {
  id: string;
  email: string;
  password_hash: string;
  first_name: string | null;
  last_name: string | null;
  is_admin: boolean;
  is_super_admin: boolean;
  /** Counted up whenever the tokens issued so far must die (0003_token_version.sql). */
  token_version: number;
  /** The user's last login (0004_last_accessed.sql); null before the first. */
  last_accessed_at: Date | null;
  created_at: Date;
  deleted_at: Date | null;
};

/** A role; its name is its id. */
export type RoleRow = { id: string; name: string; title_name: string };

/** A role held by a user on an event (`users-events-role`). */
export type GrantRow = {
  id: string;
  user_id: string;
  event_id: string;
  role_name: string;
  created_at: Date;
};

export type TopicRow = {
  id: string;
  name: string;
  slug: string;
  system_image_url: string | null;
  created_at: Date;
  deleted_at: Date | null;
};

export type SubTopicRow = {
  id: string;
  name: string;
  slug: string;
  event_topic_id: string;
  created_at: Date;
  deleted_at: Date | null;
};

export type EventRow = {
  id: string;
  identifier: string;
  name: string;
  description: string | null;
  location_name: string | null;
  starts_at: Date;
  ends_at: Date;
  timezone: string;
  state: "draft" | "published";
  privacy: "public" | "private";
  can_pay_by_stripe: boolean;
  is_stripe_linked: boolean;
  stripe_linked_at: Date | null;
  /** ISO 4217, upper case (0007_payment_currency.sql); null: none sent. */
  payment_currency: string | null;
  event_topic_id: string | null;
  event_sub_topic_id: string | null;
  owner_id: string | null;
  created_at: Date;
  deleted_at: Date | null;
};

export type TicketRow = {
  id: string;
  event_id: string;
  name: string;
  description: string | null;
  type: "free" | "paid" | "donation";
  price: string;
  quantity: number;
  sales_starts_at: Date | null;
  sales_ends_at: Date | null;
  created_at: Date;
  deleted_at: Date | null;
};
