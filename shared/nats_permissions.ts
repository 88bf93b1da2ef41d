/**
 * A NATS user per process, each allowed only the subjects it uses: the services trust the caller a
 * bus request names (the gateway checked the token), and requests carry passwords, so whoever may
 * publish or subscribe on the bus can act as any user or read their logins. A private network is
 * the first wall; these permissions are the second (README, "NATS users and permissions"):
 *
 * - only the gateway asks the services' HTTP operations, and it may not ask their internal ones
 *   (`catalog.internal.access`...), publish facts, or listen on any service's subjects;
 * - a service asks other services only their operations for services (`internal.*`, `resolve`,
 *   `resolve-related`...), never an HTTP one (which would let it act as an admin); it listens on
 *   its own subjects only (no other process hears a login's password), and publishes only its own
 *   facts (audit cannot announce an event deleted);
 * - each process hears only its own replies (`_INBOX.<process>.>`, shared/bus.ts `inboxPrefix`);
 * - JetStream: the prefix's fact and parked streams only, by name, made and read but never
 *   changed, purged or removed; a service makes, reads, pulls and acknowledges its own durable
 *   consumer only (audit cannot drain discounts' deliveries), and the one its catch-up replays
 *   with, which it also removes; the gateway only reads the fact stream's state.
 *
 * Found by a review (2026-12-06) in the first version: every service could ask any HTTP operation
 * naming an admin, purge the fact stream through a settings update, and pull and acknowledge
 * another service's deliveries. What permissions cannot stop, a pull's reply subject (the server
 * delivers a stored message of the puller's making anywhere), the processes stop themselves: a
 * service runs only requests answered to an inbox (shared/bus.ts `#unasked`), a requester takes no
 * message with a reply of its own as an answer and its tokens cannot be guessed (`Replies`).
 * Limits (README): the first to make a stream chooses its settings. Until 2026-12-06 a service's
 * catch-up replayed with a consumer the server named, refused here: its start failed.
 *
 * `deno task nats-permissions` prints them as a nats-server `authorization` block.
 */
import { contracts, serviceNames } from "./contracts/mod.ts";
import { replayConsumerName } from "./fact_catch_up.ts";
import { facts, gatewayTouched } from "./subjects.ts";

/** The processes that connect to the bus, each as its own NATS user. */
export const BUS_PROCESSES = ["gateway", ...serviceNames] as const;

/**
 * The durable consumer each service follows facts with (`durable` in its follow_*.ts): only its
 * own may it pull. testing/nats_permissions_test.ts runs all four, and a name out of step with the
 * service's is refused there.
 */
export const DURABLES: Readonly<Record<string, string>> = {
  catalog: "catalog-stripe-links",
  discounts: "discounts-catalog",
  payments: "payments-catalog",
  audit: "audit",
};

export interface ProcessPermissions {
  publish: string[];
  subscribe: string[];
  /** May answer requests sent to it (reply subjects it was not let publish on otherwise). */
  allowResponses: boolean;
}

/** What each process may publish and subscribe to on the bus of `prefix`. */
export function natsPermissions(prefix: string): Record<string, ProcessPermissions> {
  const p = (subject: string) => `${prefix}.${subject}`;
  const factStream = facts.stream(prefix);
  const shared = {
    publish: [p(gatewayTouched), p("discovery.>"), "$JS.API.INFO"],
    subscribe: [p(gatewayTouched), p("discovery.>")],
  };
  const permissions: Record<string, ProcessPermissions> = {
    gateway: {
      publish: [
        ...shared.publish,
        // What it routes HTTP to, and the services' includes.
        ...operations((access, subject) => access !== "services" || INCLUDES.test(subject)).map(p),
        // /health and /metrics ask every instance (NATS's service discovery verbs).
        "$SRV.>",
        // The fact stream's state, to tell whether facts were missed (gateway/unheard_facts.ts).
        `$JS.API.STREAM.INFO.${factStream}`,
      ],
      // It answers discovery too (its own instances in /health and /metrics).
      subscribe: [...shared.subscribe, "_INBOX.gateway.>", p(facts.all), "$SRV.>"],
      allowResponses: true,
    },
  };
  for (const service of serviceNames) {
    permissions[service] = {
      publish: [
        ...shared.publish,
        // Asking each other; answers go by `allowResponses`.
        ...operations((access, subject) => access === "services" && ASKED_BY_SERVICES.test(subject))
          .map(p),
        p(`facts.${service}.>`),
        p(facts.parked),
        ...streamApi([factStream, facts.parkedStream(prefix)]),
        ...consumerApi(factStream, DURABLES[service]),
        ...replayApi(factStream, DURABLES[service]),
      ],
      // Facts as they are published too (access projections, shared/access_projection.ts).
      subscribe: [
        ...shared.subscribe,
        `_INBOX.${service}.>`,
        p(`${service}.>`),
        p(facts.all),
        "$SRV.>",
      ],
      allowResponses: true,
    };
  }
  return permissions;
}

/** The operations that merge other services' resources into a document (`include`). */
const INCLUDES = /\.(resolve|resolve-related)$/;

/**
 * What services ask each other: internal operations and includes. Not the other operations for
 * services (`discounts.redemptions.*`, an order flow's, asked by no process here).
 */
const ASKED_BY_SERVICES = /\.(internal\.[a-z-]+|resolve|resolve-related)$/;

/** The subjects of every service's operations `which` accepts. */
function operations(which: (access: string, subject: string) => boolean): string[] {
  const subjects = new Set<string>();
  for (const contract of contracts) {
    for (const operation of Object.values(contract.operations)) {
      const subject = operation.endpoint.subject;
      if (which(operation.access, subject)) subjects.add(subject);
    }
  }
  return [...subjects].sort();
}

/**
 * JetStream's API on `streams`: make them and read their state and messages. Not an update
 * (`max_msgs: 1` purges a stream as surely as a purge: a review), so a process whose settings
 * differ from the stream's (FACTS_REPLICAS) says so and goes on with the stream as it is
 * (shared/fact_streams.ts); an operator changes it.
 */
function streamApi(streams: string[]): string[] {
  return streams.flatMap((stream) =>
    ["INFO", "CREATE", "MSG.GET"].map((verb) => `$JS.API.STREAM.${verb}.${stream}`)
  );
}

/** JetStream's API on the durable consumer `name` of `stream` only: make, read, pull, ack. */
function consumerApi(stream: string, name: string | undefined): string[] {
  if (name === undefined) return [];
  return [
    `$JS.API.CONSUMER.CREATE.${stream}.${name}`,
    `$JS.API.CONSUMER.CREATE.${stream}.${name}.>`,
    `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.${name}`,
    `$JS.API.CONSUMER.INFO.${stream}.${name}`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.${name}`,
    `$JS.ACK.${stream}.${name}.>`,
  ];
}

/**
 * JetStream's API on the consumer a catch-up replays with for the durable `name`
 * (shared/fact_catch_up.ts): as on the durable (but made as no durable), and its removal, before a
 * replay (one left behind) and after.
 */
function replayApi(stream: string, durable: string | undefined): string[] {
  if (durable === undefined) return [];
  const replay = replayConsumerName(durable);
  return [
    ...consumerApi(stream, replay).filter((subject) => !subject.includes(".DURABLE.")),
    `$JS.API.CONSUMER.DELETE.${stream}.${replay}`,
  ];
}

/**
 * `permissions` as a nats-server `authorization` block, a user per process named after it. The
 * passwords are the configuration's variables (`$OE_NATS_PASSWORD_GATEWAY`...: nats-server reads
 * them from its environment) unless `passwords` gives them.
 */
export function authorizationBlock(
  permissions: Record<string, ProcessPermissions>,
  passwords?: Record<string, string>,
): string {
  const list = (subjects: string[]) => subjects.map((s) => `"${s}"`).join(", ");
  const users = Object.entries(permissions).map(([name, allowed]) => {
    const password = passwords?.[name] === undefined
      ? passwordVariable(name)
      : `"${passwords[name]}"`;
    return [
      `    {`,
      `      user: "${name}", password: ${password}`,
      `      permissions: {`,
      `        publish: { allow: [${list(allowed.publish)}] }`,
      `        subscribe: { allow: [${list(allowed.subscribe)}] }`,
      ...(allowed.allowResponses ? [`        allow_responses: true`] : []),
      `      }`,
      `    }`,
    ].join("\n");
  });
  return `authorization {\n  users: [\n${users.join(",\n")}\n  ]\n}\n`;
}

/** The configuration variable holding `process`'s password. */
export function passwordVariable(process: string): string {
  return `$OE_NATS_PASSWORD_${process.toUpperCase().replaceAll("-", "_")}`;
}
