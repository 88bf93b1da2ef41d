/**
 * open-event-frontend's explore page (v1.7.0, app/routes/explore.js) filters events by a date
 * range. Its presets send ISO instants (`moment().toISOString()`); its "Custom dates" send what
 * its date pickers show, `MM-DD-YYYY` (FORM_DATE_FORMAT), which the original passed to Postgres,
 * whose default DateStyle (`ISO, MDY`) reads it month first.
 */
import assert from "node:assert/strict";
import { expectError, startTestSystem } from "@testing/system.ts";
import { filteredEventIds, filterParam as filter } from "@testing/event_lists.ts";

/** The page's filter for a start and an end date: the event overlaps the range. */
const between = (start: string, end: string) => ({
  or: [
    {
      and: [{ name: "starts-at", op: "ge", val: start }, { name: "starts-at", op: "le", val: end }],
    },
    { and: [{ name: "ends-at", op: "ge", val: start }, { name: "ends-at", op: "le", val: end }] },
    { and: [{ name: "starts-at", op: "le", val: start }, { name: "ends-at", op: "ge", val: end }] },
  ],
});
/** The page's filter for a start date alone. */
const from = (start: string) => ({
  or: [{ name: "starts-at", op: "ge", val: start }, { name: "ends-at", op: "ge", val: start }],
});

Deno.test("[catalog] GET /v1/events reads explore's custom dates (MM-DD-YYYY) as Postgres did", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const at = (starts: string, ends: string) =>
    system.createEvent(owner.token, {
      attributes: { state: "published", "starts-at": starts, "ends-at": ends },
    });
  const january = await at("2030-01-10T09:00:00Z", "2030-01-11T17:00:00Z");
  const march = await at("2030-03-05T09:00:00Z", "2030-03-06T17:00:00Z");

  const list = (conditions: unknown) => filteredEventIds(system, conditions);

  await t.step("a range and a start date, as the page's date pickers give them", async () => {
    const published = { name: "state", op: "eq", val: "published" };
    assert.deepEqual(await list([published, between("01-01-2030", "01-31-2030")]), [january.id]);
    // A date is the midnight that begins it (UTC), as Postgres read it: a range ending on March
    // 5th ends before the March event's 9:00 start.
    assert.deepEqual(await list([published, between("01-11-2030", "03-05-2030")]), [january.id]);
    assert.deepEqual(await list([published, between("01-11-2030", "03-06-2030")]), [
      january.id,
      march.id,
    ]);
    assert.deepEqual(await list([published, from("02-01-2030")]), [march.id]);
    // Month first, as Postgres reads it: 03-01 is March 1st, not January 3rd.
    assert.deepEqual(await list([published, from("03-01-2030")]), [march.id]);
    assert.deepEqual(await list([published, from("3/1/2030")]), [march.id]);
    assert.deepEqual(await list([{ name: "starts-at", op: "ge", val: "01-10-2030" }]), [
      january.id,
      march.id,
    ]);
    assert.deepEqual(await list([{ name: "starts-at", op: "lt", val: "01-10-2030" }]), []);
  });

  await t.step("a day that does not exist is still a 400 naming filter", async () => {
    // Postgres refused both too (month 13; February 30th).
    for (const val of ["13-01-2030", "02-30-2030"]) {
      expectError(
        await system.call(
          "GET",
          `/v1/events?filter=${filter([{ name: "starts-at", op: "ge", val }])}`,
        ),
        400,
        { parameter: "filter" },
      );
    }
  });
});
