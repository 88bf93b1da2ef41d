import assert from "node:assert/strict";
import { BadRequestError, ForbiddenError, NotFoundError, UnauthorizedError } from "../errors.ts";
import type { HttpRequest } from "../schemas/http.ts";
import {
  linkageOf,
  notFound,
  permanentDelete,
  renderLinkage,
  renderList,
  renderOne,
  requireActor,
  requireAdmin,
  requireLogin,
  translatingDbErrors,
  withTrashed,
} from "./mod.ts";

const req = (over: Partial<HttpRequest> = {}): HttpRequest => ({
  actor: null,
  params: {},
  path: "/v1/things",
  query: {},
  requestId: "r",
  ...over,
});
const admin = { id: "1", email: "a@x.org", isAdmin: true, isSuperAdmin: false };
const user = { id: "2", email: "u@x.org", isAdmin: false, isSuperAdmin: false };

Deno.test("[kit] requireAdmin answers 401 for nobody, 403 for users, the caller for admins", () => {
  assert.throws(() => requireAdmin(null), UnauthorizedError);
  assert.throws(() => requireAdmin(user), /Cannot continue: only admins may do this/);
  assert.throws(() => requireAdmin(user, "delete codes"), /Cannot delete codes: only admins may/);
  assert.throws(() => requireAdmin(user), ForbiddenError);
  assert.equal(requireAdmin({ ...user, isSuperAdmin: true }).id, "2");
  assert.equal(requireAdmin(admin), admin);
});

Deno.test("[kit] requireActor and requireLogin refuse anonymous callers with 401", () => {
  assert.throws(() => requireActor(null), UnauthorizedError);
  assert.throws(() => requireLogin(null), UnauthorizedError);
  assert.deepEqual(requireActor({ id: "5" }), { id: "5" });
  assert.equal(requireLogin(user), user);
});

Deno.test("[kit] trashed rows are shown and purged for admins only", () => {
  assert.equal(withTrashed(admin, { get_trashed: "true" }), true);
  assert.equal(withTrashed(user, { get_trashed: "true" }), false);
  assert.equal(withTrashed(admin, {}), false);
  assert.equal(permanentDelete(admin, { permanent: "true" }), true);
  assert.equal(permanentDelete(user, {}), false);
  assert.throws(() => permanentDelete(user, { permanent: "true" }), ForbiddenError);
  assert.equal(permanentDelete(user, { permanent: "false" }), false);
  assert.throws(() => permanentDelete(admin, { permanent: "yes" }), BadRequestError);
  assert.throws(() => notFound("thing", "9"), NotFoundError);
});

const ticketDef = {
  type: "ticket",
  collection: "tickets",
  attributes: { name: "name" },
  relationships: { event: { type: "event", key: "event_id" } },
};
const codeDef = {
  type: "discount-code",
  collection: "discount-codes",
  attributes: { code: "code" },
  relationships: {
    event: { type: "event", key: "event_id" },
    tickets: { type: "ticket", many: true, key: "ticket_ids" },
  },
};

Deno.test("[kit] renderOne links a created resource and asks the gateway for foreign includes", () => {
  const reply = renderOne(ticketDef, { id: "7", name: "A", event_id: "3" }, {
    req: req(),
    status: 201,
    include: ["event"],
  });
  assert.equal(reply.status, 201);
  assert.equal(reply.location, "/v1/tickets/7");
  // The catalog owns both tickets and events: nothing for the gateway.
  assert.equal(reply.foreignIncludes, undefined);
  const code = renderOne(codeDef, { id: "4", code: "X", event_id: "3", ticket_ids: ["8", "9"] }, {
    req: req({ path: "/v1/discount-codes/4" }),
    include: ["event", "tickets"],
  });
  assert.deepEqual(code.foreignIncludes, { event: ["3"], ticket: ["8", "9"] });
  assert.equal(code.location, undefined);
});

Deno.test("[kit] renderList names relationships another service serves", () => {
  const reply = renderList(ticketDef, { rows: [{ id: "7", name: "A", event_id: "3" }], count: 1 }, {
    req: req({ path: "/v1/tickets" }),
    query: { page: { size: 10, number: 1 }, include: ["discount-codes"], fields: {} },
  });
  assert.deepEqual(reply.foreignRelations, [
    { parentType: "ticket", relationship: "discount-codes", parentIds: ["7"] },
  ]);
  assert.equal((reply.body as { meta: { count: number } }).meta.count, 1);
});

Deno.test("[kit] renderLinkage gives to-one, to-many and empty linkage", () => {
  const reply = renderLinkage({ type: "event" }, { id: 3 }, {
    req: req({ params: { id: "7", rel: "event" } }),
    parent: { collection: "tickets" },
  });
  assert.deepEqual(reply.body, {
    data: { type: "event", id: "3" },
    links: { self: "/v1/tickets/7/relationships/event", related: "/v1/tickets/7/event" },
    jsonapi: { version: "1.0" },
  });
  assert.deepEqual(linkageOf({ type: "ticket" }, [{ id: "1" }]), [{ type: "ticket", id: "1" }]);
  assert.equal(linkageOf({ type: "ticket" }, null), null);
});

Deno.test("[kit] translatingDbErrors turns a bad value into 400", async () => {
  const handler = translatingDbErrors(() =>
    Promise.reject(Object.assign(new Error("x"), { code: "22P02" }))
  );
  await assert.rejects(
    async () => await handler({}, undefined as never),
    /Cannot read a value: it has the wrong format/,
  );
});
