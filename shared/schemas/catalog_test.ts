import assert from "node:assert/strict";
import { dateTime, isTimezone, timezoneSpelling } from "./catalog.ts";

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

Deno.test("[schemas] timezoneSpelling gives the IANA case and keeps links as sent", () => {
  const cases = [
    ["asia/kolkata", "Asia/Kolkata"],
    ["ASIA/KOLKATA", "Asia/Kolkata"],
    ["Asia/Kolkata", "Asia/Kolkata"],
    // A link (pytz accepted it), not respelled as its target.
    ["Asia/Calcutta", "Asia/Calcutta"],
    ["asia/calcutta", "Asia/Calcutta"],
    ["utc", "UTC"],
    ["etc/utc", "Etc/UTC"],
    ["us/pacific", "US/Pacific"],
    ["america/port-au-prince", "America/Port-au-Prince"],
    ["etc/gmt-8", "Etc/GMT-8"],
  ];
  for (const [sent, spelled] of cases) {
    assert.equal(isTimezone(sent), true, sent);
    assert.equal(timezoneSpelling(sent), spelled, sent);
  }
});

Deno.test("[schemas] dateTime takes basic-format offsets and still needs one", () => {
  const instants = [
    ["2026-05-01T10:00:00+0530", "2026-05-01T04:30:00.000Z"],
    ["2026-05-01T10:00:00.250-0800", "2026-05-01T18:00:00.250Z"],
    ["2026-05-01T10:00:00+05", "2026-05-01T05:00:00.000Z"],
    ["2026-05-01T10:00:00+05:30", "2026-05-01T04:30:00.000Z"],
    ["2026-05-01T10:00:00Z", "2026-05-01T10:00:00.000Z"],
    // As the original's marshmallow 2 also read them: a space, no seconds, one-digit fields.
    ["2026-05-01 10:00:00+00:00", "2026-05-01T10:00:00.000Z"],
    ["2026-05-01 10:00:00.250+0530", "2026-05-01T04:30:00.250Z"],
    ["2026-05-01T10:00Z", "2026-05-01T10:00:00.000Z"],
    ["2026-5-1T9:05-08", "2026-05-01T17:05:00.000Z"],
  ];
  for (const [sent, instant] of instants) {
    assert.equal(dateTime.parse(sent).toISOString(), instant, sent);
  }
  const refused = [
    "2026-05-01T10:00:00",
    "2026-05-01 10:00:00",
    "2026-05-01 10:00",
    "2026-05-01 24:00Z",
    "2026-05-01T10:00:00 +05:30",
    "2026-05-01",
    "2026-05-01T10:00:00+053",
    "2026-05-01T10:00:00+2400",
    "2026-05-01T10:00:00+0560",
    "2026-05-01T10:00:00Z+0530",
    "2026-05-01+0530",
    "tomorrow",
  ];
  for (const sent of refused) assert.equal(dateTime.safeParse(sent).success, false, sent);
});
