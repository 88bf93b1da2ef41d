/**
 * Every attribute each JSON:API resource type shows its clients, with its JSON Schema type: the
 * wire shape, declared once. The blueprint's `+ Schema` sections are generated from it
 * (scripts/blueprint_schema.ts), and each service's resource definition (services/<name>/resources.ts)
 * must map exactly these names (shared/contracts/attributes_test.ts).
 */
export type Schema = Record<string, unknown>;

const string = { type: "string" };
const nullableString = { type: ["string", "null"] };
const dateTime = { type: "string", format: "date-time" };
const nullableDateTime = { type: ["string", "null"], format: "date-time" };
const boolean = { type: "boolean" };
const integer = { type: "integer" };
const nullableInteger = { type: ["integer", "null"] };
const number = { type: "number" };
/** Image URLs the original's clients read; we store no images, so they are always null. */
const images = (...names: string[]) =>
  Object.fromEntries(names.map((name) => [name, nullableString]));

export const ATTRIBUTES: Record<string, Record<string, Schema>> = {
  "activity": { actor: string, time: dateTime, action: string },
  "user": {
    "email": string,
    "first-name": nullableString,
    "last-name": nullableString,
    "is-admin": boolean,
    "is-super-admin": boolean,
    "is-sales-admin": boolean,
    "is-marketer": boolean,
    "is-verified": boolean,
    "last-accessed-at": nullableDateTime,
    "created-at": dateTime,
    "deleted-at": nullableDateTime,
    ...images(
      "avatar-url",
      "original-image-url",
      "thumbnail-image-url",
      "small-image-url",
      "icon-image-url",
    ),
  },
  "role": { "name": string, "title-name": string, "deleted-at": nullableDateTime },
  "users-events-role": { "created-at": dateTime },
  "event": {
    "identifier": string,
    "name": string,
    "description": nullableString,
    "location-name": nullableString,
    "starts-at": dateTime,
    "ends-at": dateTime,
    "timezone": string,
    "state": { type: "string", enum: ["draft", "published"] },
    "privacy": { type: "string", enum: ["public", "private"] },
    "can-pay-by-stripe": boolean,
    "is-stripe-linked": boolean,
    "payment-currency": { type: ["string", "null"], pattern: "^[A-Z]{3}$" },
    "created-at": dateTime,
    "deleted-at": nullableDateTime,
    "external-event-url": nullableString,
    "is-event-online": boolean,
    "is-featured": boolean,
    "is-sessions-speakers-enabled": boolean,
    ...images(
      "logo-url",
      "original-image-url",
      "thumbnail-image-url",
      "large-image-url",
      "icon-image-url",
    ),
  },
  "event-topic": {
    "name": string,
    "slug": string,
    "system-image-url": nullableString,
    "created-at": dateTime,
    "deleted-at": nullableDateTime,
  },
  "event-sub-topic": {
    "name": string,
    "slug": string,
    "created-at": dateTime,
    "deleted-at": nullableDateTime,
  },
  // The original's; none is kept here, so its list is always empty (the catalog's event-types).
  "event-type": { "name": string, "slug": string, "deleted-at": nullableDateTime },
  "ticket": {
    "name": string,
    "description": nullableString,
    "type": { type: "string", enum: ["free", "paid", "donation"] },
    // Sent as null, they are stored as 0 and 100: never shown so.
    "price": number,
    "quantity": integer,
    "sales-starts-at": nullableDateTime,
    "sales-ends-at": nullableDateTime,
    "created-at": dateTime,
    "deleted-at": nullableDateTime,
    "is-hidden": boolean,
    "min-order": integer,
    "max-order": nullableInteger,
  },
  "discount-code": {
    "code": string,
    "discount-url": nullableString,
    "value": number,
    "type": { type: "string", enum: ["amount", "percent"] },
    "is-active": boolean,
    "tickets-number": nullableInteger,
    "min-quantity": integer,
    "max-quantity": integer,
    "valid-from": nullableDateTime,
    "valid-till": nullableDateTime,
    "used-for": { type: "string", enum: ["event", "ticket"] },
    "used-count": integer,
    "created-at": dateTime,
    "deleted-at": nullableDateTime,
  },
  "stripe-authorization": {
    "stripe-publishable-key": string,
    "deleted-at": nullableDateTime,
  },
};
