import assert from "node:assert/strict";
import { inStoredYears, readDateTime } from "./date_time.ts";

const iso = (text: string, naive: "refused" | "utc") => readDateTime(text, naive)?.toISOString();

Deno.test("[date_time] readDateTime reads the original's grammar in both modes alike", () => {
  const forms: [string, string][] = [
    ["2026-05-01T10:00:00Z", "2026-05-01T10:00:00.000Z"],
    ["2026-5-1 9:5+0530", "2026-05-01T03:35:00.000Z"],
    ["2026-05-01 10:00:00.2509-08", "2026-05-01T18:00:00.250Z"],
    ["2026-05-01T10:00:00.579+00:00", "2026-05-01T10:00:00.579Z"],
    ["0005-03-01T10:30Z", "0005-03-01T10:30:00.000Z"],
  ];
  for (const [text, instant] of forms) {
    assert.equal(iso(text, "refused"), instant, text);
    assert.equal(iso(text, "utc"), instant, text);
  }
});

Deno.test("[date_time] readDateTime takes a naive time or a date alone only as UTC", () => {
  for (
    const [text, instant] of [["2026-5-1 9:05", "2026-05-01T09:05:00.000Z"], [
      "2026-5-1",
      "2026-05-01T00:00:00.000Z",
    ]]
  ) {
    assert.equal(iso(text, "utc"), instant, text);
    assert.equal(iso(text, "refused"), undefined, text);
  }
});

Deno.test("[date_time] readDateTime names no instant for what names no time", () => {
  const refused = [
    "2026-02-29T10:00Z",
    "2026-13-01T10:00Z",
    "2026-05-01T24:00Z",
    "2026-05-01T10:60Z",
    "2026-05-01T10:00:60Z",
    "2026-05-01T10:00+24:00",
    "2026-05-01T10:00+0560",
    "2026-05-01T10Z",
    "2026-05-01t10:00z",
    "2026-05-01T10:00 Z",
    "2026-005-01T10:00Z",
    "tomorrow",
  ];
  for (const text of refused) {
    assert.equal(iso(text, "utc"), undefined, text);
    assert.equal(iso(text, "refused"), undefined, text);
  }
});

Deno.test("[date_time] inStoredYears holds the years Postgres timestamps hold", () => {
  assert.equal(inStoredYears(readDateTime("0001-01-01T00:00Z", "refused")!), true);
  assert.equal(inStoredYears(readDateTime("9999-12-31T23:59Z", "refused")!), true);
  assert.equal(inStoredYears(readDateTime("0000-12-31T23:00Z", "refused")!), false);
  assert.equal(inStoredYears(readDateTime("9999-12-31T23:00-02:00", "refused")!), false);
});
