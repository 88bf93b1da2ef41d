/**
 * Attribute schemas of the catalog's resources (dasherized names, as clients send them). The
 * catalog validates request documents with these; other services reuse the pieces.
 *
 * @example
 * ```ts
 * import { eventTopicAttributes } from "@shared/schemas/catalog.ts";
 * eventTopicAttributes.parse({ name: "Science" });
 * ```
 */
import { z } from "zod";
import { lenientBoolean, lenientNumber } from "./lenient.ts";
import { inStoredYears, readDateTime } from "../date_time.ts";
import { isEmailAddress } from "./email.ts";

const DATE_TIME_FORMAT = "must be an ISO 8601 date-time with a timezone";

/**
 * A timezone-aware ISO 8601 date-time, read as a Date by the rule filters share
 * (`@shared/date_time.ts`: the original's marshmallow grammar, `T` or a space, seconds optional,
 * one-digit fields): `Z` or an offset (`+05:30`, `+0530`, `+05`) is required, since a naive time
 * in an event with its own timezone is ambiguous.
 *
 * @example
 * ```ts
 * import { dateTime } from "@shared/schemas/catalog.ts";
 * dateTime.parse("2026-05-01T10:00:00+0530"); // 2026-05-01T04:30:00.000Z
 * dateTime.parse("2026-5-1 10:00+05"); // 2026-05-01T05:00:00.000Z
 * ```
 */
export const dateTime = z.string({ error: DATE_TIME_FORMAT }).transform((text, ctx) => {
  const instant = readDateTime(text, "refused");
  // Postgres stores years 1 to 9999; refuse the rest here with a pointer, not in the database.
  const message = instant === undefined
    ? DATE_TIME_FORMAT
    : inStoredYears(instant)
    ? undefined
    : "must be between the years 1 and 9999";
  if (message === undefined) return instant!;
  ctx.addIssue({ code: "custom", message, input: text });
  return z.NEVER;
});

/** The characters of IANA zone names (`America/Port-au-Prince`, `Etc/GMT+8`), a letter first. */
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+\-/]*$/;

/**
 * Whether `name` is an IANA timezone name (`Asia/Singapore`, `UTC`, `Etc/GMT-8`). Intl also takes
 * UTC offsets (`+08:00`, `-0800`, and with a Unicode minus `−08:00`), which are no zone name: the
 * original's pytz refused them (422), and the contract and the facts' schema promise a name
 * (found by reviews: they were stored).
 */
export function isTimezone(name: string): boolean {
  if (!ZONE_NAME.test(name)) return false;
  try {
    new Intl.DateTimeFormat("en", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/**
 * A timezone name in its IANA spelling, whatever case it was sent in (`utc` -> `UTC`,
 * `asia/kolkata` -> `Asia/Kolkata`, `us/pacific` -> `US/Pacific`): Intl and the original's pytz
 * accept any case, and clients compare the name they read back. A link stays the name it was
 * sent as (`Asia/Calcutta`), as pytz kept it. Temporal gives this spelling; Intl's
 * `resolvedOptions()` does not: it follows links to CLDR's choice, the legacy `Asia/Calcutta` for
 * `Asia/Kolkata`, and answers `UTC` for `Etc/UTC`.
 *
 * @example
 * ```ts
 * import { timezoneSpelling } from "@shared/schemas/catalog.ts";
 * timezoneSpelling("asia/kolkata"); // "Asia/Kolkata"
 * ```
 */
export function timezoneSpelling(name: string): string {
  try {
    return new Temporal.ZonedDateTime(0n, name).timeZoneId;
  } catch {
    // A name Intl knows and Temporal does not (`Factory`): its case-only respelling, if any.
    const resolved = new Intl.DateTimeFormat("en", { timeZone: name }).resolvedOptions().timeZone;
    return resolved.toLowerCase() === name.toLowerCase() ? resolved : name;
  }
}

const timezone = z.string().refine(isTimezone, "must be an IANA timezone name").transform(
  timezoneSpelling,
);

/**
 * An ISO 4217 currency code as an event's `payment-currency`: three letters, upper-cased (`usd` ->
 * `USD`, as Intl and Stripe read codes in any case and clients compare what they read back). Any
 * three letters are taken, as the original took any string; the form is what open-event-frontend
 * needs (`Intl.NumberFormat`'s `currency` throws on anything else). Null: none (the original's
 * default).
 *
 * @example
 * ```ts
 * import { currencyCode } from "@shared/schemas/catalog.ts";
 * currencyCode.parse("eur"); // "EUR"
 * ```
 */
export const currencyCode = z.string().regex(
  /^[A-Za-z]{3}$/,
  "must be an ISO 4217 currency code (three letters)",
).transform((code) => code.toUpperCase());

/** Text Postgres can store: no NUL characters. */
export const storableText = z.string().refine((s) => !s.includes("\u0000"), {
  message: "must not contain NUL characters",
});
const text = (max: number) =>
  storableText.pipe(z.string().trim().min(1, "must not be empty").max(max));
const optionalText = (max: number) => storableText.pipe(z.string().max(max)).nullish();

/** The shortest password sign-up, a PATCH and a password change accept. */
export const MIN_PASSWORD_LENGTH = 8;
/** The longest password sign-up takes (a longer one at login matches no account: 401). */
export const MAX_PASSWORD_LENGTH = 1024;

/**
 * A login: `email`, or else `username` as the original read it (`data.get('email',
 * data.get('username'))`), which is what open-event-frontend sends.
 */
export const loginSchema = z.preprocess(
  (body) => {
    if (typeof body !== "object" || body === null || Array.isArray(body)) return body;
    const { email, username } = body as Record<string, unknown>;
    return email === undefined && username !== undefined ? { ...body, email: username } : body;
  },
  z.object({
    // Trimmed, as the original stripped it: a login form sends what was typed, spaces included.
    email: storableText.pipe(z.string().trim().min(1).max(320)),
    // No maximum: an overlong password is wrong credentials (401), which the login answers.
    password: z.string().min(1),
  }),
);

const password = z.string().min(MIN_PASSWORD_LENGTH, "must be at least 8 characters")
  .max(MAX_PASSWORD_LENGTH);

/**
 * A password change as open-event-frontend posts it (`{"data":{"old-password","new-password"}}`,
 * plain JSON, as the original read it). The new password's length is the handler's to check: the
 * original answered a short one with 400, not as a malformed body.
 */
export const passwordChangeSchema = z.object({
  data: z.object({
    "old-password": z.string().min(1).max(1024),
    "new-password": z.string().min(1).max(1024),
  }),
});

/** A user as sent on sign-up; the admin flags are honoured for super admins only. */
export const userCreateAttributes = z.object({
  "email": storableText.pipe(
    z.string().max(320).refine(isEmailAddress, "must be an email address"),
  ),
  "password": password,
  "first-name": optionalText(255),
  "last-name": optionalText(255),
  "is-admin": lenientBoolean().optional(),
  "is-super-admin": lenientBoolean().optional(),
});

export const userUpdateAttributes = userCreateAttributes.partial();

export const eventAttributes = z.object({
  "name": text(255),
  "description": optionalText(20_000),
  "location-name": optionalText(500),
  "starts-at": dateTime,
  "ends-at": dateTime,
  "timezone": timezone.default("UTC"),
  "state": z.enum(["draft", "published"]).default("draft"),
  "privacy": z.enum(["public", "private"]).default("public"),
  "can-pay-by-stripe": lenientBoolean().default(false),
  "payment-currency": currencyCode.nullish(),
});

export const eventUpdateAttributes = z.object({
  "name": text(255).optional(),
  "description": optionalText(20_000),
  "location-name": optionalText(500),
  "starts-at": dateTime.optional(),
  "ends-at": dateTime.optional(),
  "timezone": timezone.optional(),
  "state": z.enum(["draft", "published"]).optional(),
  "privacy": z.enum(["public", "private"]).optional(),
  "can-pay-by-stripe": lenientBoolean().optional(),
  "payment-currency": currencyCode.nullish(),
});

/**
 * The schemes a URL attribute takes: those of marshmallow's `fields.Url`, which the original's
 * schemas used (http, https, ftp, ftps).
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { URL_SCHEMES } from "@shared/schemas/catalog.ts";
 * z.url({ protocol: URL_SCHEMES }).safeParse("ftps://example.com/a.png").success; // true
 * ```
 */
export const URL_SCHEMES = /^(?:https?|ftps?)$/;

export const eventTopicAttributes = z.object({
  "name": text(255),
  "system-image-url": z.url({ protocol: URL_SCHEMES, message: "must be an http(s) or ftp(s) URL" })
    .max(2000).nullish(),
});

export const eventSubTopicAttributes = z.object({ "name": text(255) });

/** Money as clients send it: a number or a numeric string, at most 2 decimals. */
export const money = lenientNumber(
  z.number().min(0, "must be at least 0").max(9_999_999_999.99, "must be at most 9999999999.99")
    .refine(
      (n) => Math.round(n * 100) === Number((n * 100).toFixed(6)),
      "has more than 2 decimals",
    ),
);

const ticketQuantity = lenientNumber(z.number().int().min(0).max(10_000_000));

/**
 * A ticket's quantity when none is given: not sent, or `null` (the original's schema allowed
 * none, and open-event-frontend's ticket model sends `null` for an empty field), on POST and
 * PATCH alike, as a price of `null` is 0.
 *
 * @example
 * ```ts
 * import { DEFAULT_TICKET_QUANTITY, ticketAttributes } from "@shared/schemas/catalog.ts";
 * ticketAttributes.parse({ name: "VIP", type: "free", quantity: null }).quantity ===
 *   DEFAULT_TICKET_QUANTITY; // true
 * ```
 */
export const DEFAULT_TICKET_QUANTITY = 100;

export const ticketAttributes = z.object({
  "name": text(255),
  "description": optionalText(20_000),
  "type": z.enum(["free", "paid", "donation"]),
  // No price, as open-event-frontend's wizard sends a free ticket (`null`): 0, as the original
  // allowed none; a paid or donation ticket then fails its own rule (price above 0).
  "price": money.nullish().transform((price) => price ?? 0),
  "quantity": ticketQuantity.nullish().transform((quantity) => quantity ?? DEFAULT_TICKET_QUANTITY),
  "sales-starts-at": dateTime.nullish(),
  "sales-ends-at": dateTime.nullish(),
  // Every ticket of a published event is listed here (`is-hidden` is always false): a ticket
  // asked to be hidden was made, silently, for all to see. Refused instead; false and null, what
  // open-event-frontend sends for every ticket, are taken.
  "is-hidden": lenientBoolean().nullish().refine((hidden) => hidden !== true, {
    message: "hidden tickets are not supported: every ticket of a published event is listed",
  }),
});

export const ticketUpdateAttributes = ticketAttributes.partial().extend({
  "price": money.nullish(),
  "quantity": ticketQuantity.nullish(),
});
