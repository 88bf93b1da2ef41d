// Hook file for the protocol test: every hook appends to `order` on the transaction (or on the
// first one for *All events), so the test can read the order back from the replies.
import { hooks, type Transaction } from "../hooks.ts";

function note(t: Transaction, step: string): void {
  const order = Array.isArray(t.order) ? t.order : [];
  t.order = [...order, step];
}

function pause(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

hooks.beforeAll((ts) => {
  for (const t of ts) note(t, "beforeAll");
});
hooks.beforeEach((t) => note(t, "beforeEach"));
hooks.before("A > B > C", async (t) => {
  await pause(20); // proves async hooks are awaited before the reply
  note(t, "before");
  t.request.headers["X-Added"] = "yes";
});
hooks.before("A > B > C", (t) => note(t, "before2"));
hooks.beforeEachValidation((t) => note(t, "beforeEachValidation"));
hooks.beforeValidation("A > B > C", (t) => note(t, "beforeValidation"));
hooks.after("A > B > C", (t) => note(t, "after"));
hooks.afterEach((t) => note(t, "afterEach"));
hooks.afterAll((ts) => {
  for (const t of ts) note(t, "afterAll");
});
hooks.before("Broken", () => {
  throw new Error("Cannot prepare: broken on purpose");
});
hooks.before("Broken", (t) => note(t, "ranAfterBroken"));
