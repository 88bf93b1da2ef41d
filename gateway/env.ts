/** What the gateway's middleware hands to the handlers after it (Hono's `c.var`). */
import type { WritePrecondition } from "@shared/errors.ts";
import type { Actor } from "@shared/schemas/http.ts";
import type { ReadSnapshot } from "./read_snapshots.ts";

export interface GatewayEnv {
  Variables: {
    /** The authenticated caller, or null when the request carried no token. */
    actor: Actor | null;
    requestId: string;
    /**
     * The write's precondition that failed, when it carries an `Idempotency-Key`: its service
     * answers it from the key (gateway/middleware/write_preconditions.ts).
     */
    preconditionFailed?: WritePrecondition;
    /**
     * The write's preconditions held on a read answered under this snapshot: the write goes to
     * its service with it, which refuses it (412) if what it changes changed since.
     */
    unchangedSince?: ReadSnapshot & { header: WritePrecondition };
  };
}
