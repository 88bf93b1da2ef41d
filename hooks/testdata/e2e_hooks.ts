// Hook file for the end-to-end test. The server answers 401 without the header, so passing
// proves beforeEach ran; the named hook writes a marker (HOOKS_TEST_MARKER) or, with
// HOOKS_TEST_THROW set, throws, so the test sees how Dredd reports a broken hook.
import { hooks } from "../hooks.ts";

hooks.beforeEach((transaction) => {
  transaction.request.headers["Authorization"] = "Bearer test";
});

hooks.before("Things > Thing > Get a thing", async (transaction) => {
  if (Deno.env.get("HOOKS_TEST_THROW")) throw new Error("Cannot prepare the thing: test");
  const marker = Deno.env.get("HOOKS_TEST_MARKER");
  if (marker) await Deno.writeTextFile(marker, `before ${transaction.name}\n`, { append: true });
});
