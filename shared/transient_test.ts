import assert from "node:assert/strict";
import { errors as natsErrors } from "@nats-io/nats-core";
import {
  BadGatewayError,
  ConflictError,
  GatewayTimeoutError,
  InternalError,
  ServiceUnavailableError,
} from "./errors.ts";
import { isTransientFailure } from "./transient.ts";

const withCode = (code: string) => Object.assign(new Error(code), { code });

Deno.test("[transient] isTransientFailure knows an unavailable dependency from a wrong fact", async (t) => {
  await t.step("a dependency away, busy or slow: transient", () => {
    for (
      const error of [
        new ServiceUnavailableError("Cannot reach the database"),
        new BadGatewayError("Cannot unlink Stripe: Stripe cannot be reached"),
        new GatewayTimeoutError("Cannot finish in time"),
        new natsErrors.TimeoutError(),
        new natsErrors.NoRespondersError("catalog.x"),
        withCode("ECONNREFUSED"),
        withCode("CONNECT_TIMEOUT"),
        withCode("08006"),
        withCode("40P01"),
        withCode("55P03"),
        withCode("57014"),
        withCode("53100"),
        withCode("25006"),
        withCode("42P01"),
        withCode("42501"),
        withCode("3F000"),
        withCode("28P01"),
        withCode("25P03"),
        withCode("58030"),
        withCode("XX001"),
        withCode("ENOTFOUND"),
        withCode("EAI_AGAIN"),
      ]
    ) assert.ok(isTransientFailure(error), String(error));
  });
  await t.step("found in the cause of another error", () => {
    const wrapped = new InternalError("Cannot apply the fact", { cause: withCode("ECONNRESET") });
    assert.ok(isTransientFailure(new Error("outer", { cause: wrapped })));
  });
  await t.step("a bug or a value the database refuses: not transient", () => {
    for (
      const error of [
        new TypeError("Cannot read properties of null"),
        new ConflictError("Cannot save: the object already exists"),
        withCode("23505"),
        withCode("22003"),
        withCode("22P02"),
        withCode("42"),
        "a thrown string",
        undefined,
      ]
    ) assert.ok(!isTransientFailure(error), String(error));
  });
});
