import assert from "node:assert/strict";
import { withMissingId, withUnknownParameter } from "./errors.ts";

Deno.test("[hooks] error examples put the missing id in the resource's place", () => {
  assert.equal(withMissingId("/v1/events/1"), "/v1/events/99999");
  assert.equal(
    withMissingId("/v1/events/abcdef01/tickets?sort=name"),
    "/v1/events/99999/tickets?sort=name",
  );
  assert.equal(
    withMissingId("/v1/users/3/relationships/events"),
    "/v1/users/99999/relationships/events",
  );
});

Deno.test("[hooks] error examples add the unknown parameter to any query", () => {
  assert.equal(withUnknownParameter("/v1/events"), "/v1/events?fields[nope]=1");
  assert.equal(
    withUnknownParameter("/v1/events?sort=name"),
    "/v1/events?sort=name&fields[nope]=1",
  );
});
