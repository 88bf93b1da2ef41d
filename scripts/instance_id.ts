/**
 * Prints the `OTEL_RESOURCE_ATTRIBUTES` a process about to start should have: the operator's own
 * and a `service.instance.id` of its own (`withInstanceId`, scripts/launch.ts). Deno reads the
 * variable once, as a process starts, so it cannot be set from inside: whoever launches a process
 * sets it. `deno task start` does so itself; `deno task start:<name>` and compose.yaml's commands
 * run this first, so that every instance an operator starts exports metrics under an identity of
 * its own (before, only `deno task start` gave one, and two instances started by hand exported
 * one series that jumped between them).
 *
 * Run as `INSTANCE_ID_ENV` (scripts/launch.ts) says, in front of the process's `deno run`; in a
 * container, scripts/with_instance_id.sh does it.
 */
import { withInstanceId } from "./launch.ts";

if (import.meta.main) {
  // Written directly, not with console.log: with OTEL_DENO=true Deno may capture console output.
  const line = withInstanceId(Deno.env.get("OTEL_RESOURCE_ATTRIBUTES")) + "\n";
  Deno.stdout.writeSync(new TextEncoder().encode(line));
}
