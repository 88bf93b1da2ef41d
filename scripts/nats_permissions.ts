/**
 * Prints the NATS users of one system, a user per process with only the subjects it uses
 * (shared/nats_permissions.ts), as a nats-server `authorization` block to include in its
 * configuration. The passwords are configuration variables (`$OE_NATS_PASSWORD_GATEWAY`...) that
 * nats-server reads from its environment: nothing secret is printed. Each process then connects
 * as its own user (`NATS_URL=nats://catalog:<password>@nats:4222` for the catalog).
 *
 * Run: `deno task nats-permissions` (for BUS_PREFIX, `oe` by default).
 */
import { loadConfig } from "@shared/config.ts";
import "@shared/lifecycle.ts";
import { authorizationBlock, natsPermissions } from "@shared/nats_permissions.ts";

console.log(authorizationBlock(natsPermissions(loadConfig().busPrefix)));
