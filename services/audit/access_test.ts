import assert from "node:assert/strict";
import { catalog } from "@shared/subjects.ts";
import { eventually } from "@testing/eventually.ts";
import { actorOf, startTestSystem } from "@testing/system.ts";
import { startAuditOn } from "./_test_utils.ts";

Deno.test("[audit] an admin flag removed is refused on the next request, and behind the gateway once its fact arrives", async (t) => {
  await using system = await startTestSystem();
  const audit = await startAuditOn(system.bus, system.databaseUrl);
  system.defer(() => audit.stop());
  const user = await system.signUp();
  const read = () =>
    system.call("GET", "/v1/activities", { token: user.token }).then((r) => r.status);
  const flag = (isAdmin: boolean) => ({
    data: { type: "user", id: user.id, attributes: { "is-admin": isAdmin } },
  });
  const patch = (isAdmin: boolean) =>
    system.call("PATCH", `/v1/users/${user.id}`, {
      token: system.admin.token,
      body: flag(isAdmin),
    });

  await t.step("through the gateway: the very next request", async () => {
    assert.equal((await patch(true)).status, 200);
    assert.equal(await read(), 200);
    assert.equal((await patch(false)).status, 200);
    assert.equal(await read(), 403);
  });
  await t.step("behind the gateway: once the fact arrives", async () => {
    assert.equal((await patch(true)).status, 200);
    assert.equal(await read(), 200);
    const reply = await system.bus.forward(catalog.users.update, {
      actor: actorOf(system.admin),
      params: { id: user.id },
      path: `/v1/users/${user.id}`,
      query: {},
      body: flag(false),
      requestId: crypto.randomUUID(),
    });
    assert.equal(reply.status, 200);
    await eventually(async () => await read() === 403, 2_000, "the revocation counted", 5);
  });
});
