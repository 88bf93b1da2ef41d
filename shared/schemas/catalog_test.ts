import assert from "node:assert/strict";
import { isTimezone, timezoneSpelling } from "./catalog.ts";

Deno.test("[schemas] a timezone is an IANA name, never a UTC offset", () => {
  for (const name of ["UTC", "Asia/Singapore", "US/Pacific", "Etc/GMT-8", "europe/berlin"]) {
    assert.equal(isTimezone(name), true, name);
  }
  // Intl takes these; pytz (the original) and the facts' schema do not: found by a review.
  const offsets = ["+08:00", "+0800", "+08", "-23:59", "-00:00", " +08:00", "\u221208:00"];
  for (const name of [...offsets, "Nowhere", "", " UTC"]) {
    assert.equal(isTimezone(name), false, name);
  }
  assert.equal(timezoneSpelling("europe/berlin"), "Europe/Berlin");
});
