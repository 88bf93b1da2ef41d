/**
 * The contracts agree with the blueprint, whose every example Dredd runs against the real
 * system: each HTTP route of a contract is one documented action and the other way round, and
 * who may call it is what the documented errors show (a `signed-in` or `admin` route answers
 * 401 without a token, an `admin` route 403 to other users, an `anyone` route never asks for a
 * token). So a contract that says the wrong thing fails here or in Dredd.
 */
import assert from "node:assert/strict";
import {
  type Access,
  accessOf,
  busOperation,
  defineContract,
  resolveRelatedOperation,
  sharedByCaches,
} from "@shared/contract.ts";
import { contracts, relationOwners, serviceNames, typeOwners } from "@shared/contracts/mod.ts";
import {
  documentsRoute,
  examplesOf,
  parseBlueprint,
  type Payload,
  section,
} from "../../scripts/blueprint_apib.ts";
import { BLUEPRINT_FILES, generatedKind } from "../../hooks/error_examples.ts";
import { EVENT_RELATIONSHIPS_LEFT_OUT } from "../../services/catalog/resources.ts";

interface ContractRoute {
  /** `GET /v1/events/:id`. */
  route: string;
  name: string;
  access: Access;
}

const contractRoutes: ContractRoute[] = contracts.flatMap((contract) =>
  Object.entries(contract.operations).flatMap(([key, operation]) =>
    operation.routes.map((route) => ({
      route: `${route.method} ${route.path}`,
      name: `${contract.service}/${key}`,
      access: accessOf(operation, route),
    }))
  )
);

/** A documented 401 for a request without a token (hand-written or generated). */
function refusesAnonymous(payload: Payload): boolean {
  const body = section(payload, "Body")?.content.join("\n") ?? "";
  return payload.status === 401 && body.includes("log in first");
}

interface Documentation {
  /** Error kinds documented per contract route (`anonymous`, `forbidden`, ...). */
  kinds: Map<string, Set<string>>;
  /** Documented actions no contract route matches. */
  unrouted: string[];
}

async function documentation(): Promise<Documentation> {
  const kinds = new Map<string, Set<string>>();
  const unrouted: string[] = [];
  for (const file of BLUEPRINT_FILES) {
    for (const chunk of parseBlueprint(await Deno.readTextFile(file))) {
      // The gateway's own routes (health and its probes) are no service's contract.
      if (!("action" in chunk) || /^\/health(\/|$)/.test(chunk.action.path)) continue;
      const { method, path } = chunk.action;
      const match = contractRoutes.find(({ route }) => documentsRoute(chunk.action, route));
      if (!match) {
        unrouted.push(`${method} ${path}`);
        continue;
      }
      const found = kinds.get(match.route) ?? new Set<string>();
      kinds.set(match.route, found);
      for (const payload of examplesOf(chunk.action).flat()) {
        found.add(generatedKind(payload) ?? "");
        if (refusesAnonymous(payload)) found.add("anonymous");
        if (payload.status === 403) found.add("forbidden");
      }
    }
  }
  return { kinds, unrouted };
}

Deno.test("every contract route is documented, and every documented route is in a contract", async () => {
  const { kinds, unrouted } = await documentation();
  const undocumented = contractRoutes
    .filter(({ route }) => !kinds.has(route))
    .map(({ route }) => route);
  assert.deepEqual(undocumented, [], "contract routes without a blueprint action");
  assert.deepEqual(unrouted, [], "blueprint actions no contract routes");
});

const NEEDS_TOKEN: ReadonlySet<Access> = new Set(["signed-in", "admin"]);

Deno.test("who may call each route is what its documented (and Dredd-run) errors show", async () => {
  const { kinds } = await documentation();
  const wrong: string[] = [];
  for (const { route, name, access } of contractRoutes) {
    const documented = kinds.get(route) ?? new Set<string>();
    const anonymousRefused = documented.has("anonymous");
    if (anonymousRefused !== NEEDS_TOKEN.has(access)) {
      wrong.push(
        `${name} (${route}) says "${access}" but the blueprint ` +
          (anonymousRefused ? "refuses anonymous callers" : "has no 401 without a token"),
      );
    }
    if (access === "admin" && !documented.has("forbidden")) {
      wrong.push(`${name} (${route}) is admin-only but shows no 403`);
    }
  }
  assert.deepEqual(wrong, []);
});

Deno.test("a cacheable operation is a GET, and only its anonymous routes are shared", () => {
  let checked = 0;
  for (const contract of contracts) {
    for (const [key, operation] of Object.entries(contract.operations)) {
      if (operation.cache !== "public") continue;
      for (const route of operation.routes) {
        assert.equal(route.method, "GET", `${contract.service}/${key}: GET only`);
        assert.equal(sharedByCaches(operation, route), accessOf(operation, route) === "anyone");
        checked++;
      }
    }
  }
  // Not vacuous: the public reads of issue 11 (topics, events, tickets, the checkout lookup).
  assert.ok(checked >= 4, `only ${checked} cacheable routes checked`);
});

Deno.test("the ownership tables and the service list derive from the contracts", () => {
  assert.deepEqual([...serviceNames].sort(), ["audit", "catalog", "discounts", "payments"]);
  assert.equal(typeOwners["event"], "catalog");
  assert.equal(typeOwners["discount-code"], "discounts");
  assert.equal(relationOwners["event.stripe-authorization"], "payments");
  // Each foreign relation's parent type is owned by another service.
  for (const [relation, owner] of Object.entries(relationOwners)) {
    const parentOwner = typeOwners[relation.split(".")[0]];
    assert.ok(parentOwner && parentOwner !== owner, `${relation}: parent owned by ${parentOwner}`);
  }
});

Deno.test("a contract serving others' relationships must answer resolve-related", () => {
  const serving = (operations: Record<string, ReturnType<typeof busOperation>>) =>
    defineContract({
      service: "speakers",
      description: "a fifth service",
      types: ["speaker"],
      relations: ["event.speakers"],
      operations,
    });
  assert.throws(
    () => serving({ ping: busOperation("speakers.ping", "resolve") }),
    /speakers contract: it serves event\.speakers but has no resolve-related operation/,
  );
  assert.doesNotThrow(() => serving({ "resolve-related": resolveRelatedOperation("speakers") }));
});

Deno.test("no relationship the catalog leaves out is one another service serves", () => {
  // A left-out relationship is a placeholder the catalog renders itself, always empty: a service
  // that serves it (`relations`) must have the catalog's placeholder removed, or an event's
  // `include` of it would read as empty where its owner has resources.
  const claimed = EVENT_RELATIONSHIPS_LEFT_OUT.filter((name) => relationOwners[`event.${name}`]);
  assert.deepEqual(claimed, []);
  assert.ok(EVENT_RELATIONSHIPS_LEFT_OUT.length > 10, "the placeholders are listed");
});
