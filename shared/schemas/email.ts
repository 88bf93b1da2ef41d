/**
 * Email addresses as the original took them (marshmallow's `Email`): a dot-atom local part of
 * RFC 5322 `atext` and a domain of DNS labels, IDN domains read in their punycode form. zod's
 * `z.email()` refused parts of both that open-event-frontend's form sends and the original
 * stored (`jane&john@...`, `sales=eu@...`, TLDs such as `.xn--p1ai`, `bücher.de`). Quoted local
 * parts, IP literals and `localhost`, which marshmallow also took, are not: open-event-frontend's
 * form refuses them.
 *
 * @example
 * ```ts
 * import { isEmailAddress } from "@shared/schemas/email.ts";
 * isEmailAddress("jane&john@bücher.de"); // true
 * isEmailAddress("a..b@example.com"); // false
 * ```
 */
import { domainToASCII } from "node:url";

/** Dot-atom: runs of RFC 5322 `atext`, joined by single dots. */
const LOCAL_PART = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/** Two or more DNS labels (letters, digits, inner hyphens, at most 63 each), ASCII. */
const ASCII_DOMAIN =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])$/;

/** What an internationalized domain may hold before its punycode form is checked. */
const UNICODE_DOMAIN = /^[\p{L}\p{M}\p{N}.-]+$/u;

/** A domain's ASCII (punycode) form, or undefined when it holds what no domain name may. */
function asciiDomain(domain: string): string | undefined {
  if (ASCII_DOMAIN.test(domain)) return domain;
  // Only letters, digits, hyphens and dots go to IDNA: it passes `/`, `:` and the like through.
  if (!UNICODE_DOMAIN.test(domain)) return undefined;
  const ascii = domainToASCII(domain);
  return ascii && ASCII_DOMAIN.test(ascii) ? ascii : undefined;
}

/**
 * Whether `text` is an email address: `local@domain`, split at the last `@`, each part as the
 * module describes, the domain at most 253 characters in its ASCII form.
 *
 * @example
 * ```ts
 * import { isEmailAddress } from "@shared/schemas/email.ts";
 * isEmailAddress("ivan@example.xn--p1ai"); // true
 * ```
 */
export function isEmailAddress(text: string): boolean {
  const at = text.lastIndexOf("@");
  if (at < 1) return false;
  const domain = asciiDomain(text.slice(at + 1));
  return LOCAL_PART.test(text.slice(0, at)) && domain !== undefined && domain.length <= 253;
}
