/**
 * A NATS user per process, each allowed only the subjects it uses: the services trust the caller a
 * bus request names (the gateway checked the token), and requests carry passwords, so whoever may
 * publish or subscribe on the bus can act as any user or read their logins. A private network is
 * the first wall; these permissions are the second (README, "NATS users and permissions"):
 *
 * - only the gateway asks the services' HTTP operations, and it may not ask their internal ones
 *   (`catalog.internal.access`...), publish facts, or listen on any service's subjects;
 * - a service listens on its own subjects only (no other process hears a login's password), and
 *   publishes only its own facts (audit cannot announce an event deleted);
 * - each process hears only its own replies (`_INBOX.<process>.>`, shared/bus.ts `inboxPrefixOf`);
 * - JetStream: the prefix's fact and parked streams only, by name; the gateway only reads the fact
 *   stream's state.
 *
 * `deno task nats-permissions` prints them as a nats-server `authorization` block.
 */
import { contracts, serviceNames } from "./contracts/mod.ts";
import { facts, gatewayTouched } from "./subjects.ts";

/** The processes that connect to the bus, each as its own NATS user. */
export const BUS_PROCESSES = ["gateway", ...serviceNames] as const;

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
  const parkedStream = facts.parkedStream(prefix);
  const shared = {
    publish: [p(gatewayTouched), p("discovery.>"), "$JS.API.INFO"],
    subscribe: [p(gatewayTouched), p("discovery.>")],
  };
  const permissions: Record<string, ProcessPermissions> = {
    gateway: {
      publish: [
        ...shared.publish,
        ...gatewayAsks().map(p),
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
        // Asking each other (internal operations, includes), answering discovery.
        ...serviceNames.map((name) => p(`${name}.>`)),
        p(`facts.${service}.>`),
        p(facts.parked),
        ...jetStreamApi([factStream, parkedStream]),
        `$JS.ACK.${factStream}.>`,
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

/** What the gateway asks: every operation it routes HTTP to, and the services' includes. */
function gatewayAsks(): string[] {
  const subjects = new Set<string>();
  for (const contract of contracts) {
    for (const operation of Object.values(contract.operations)) {
      if (operation.access !== "services") subjects.add(operation.endpoint.subject);
    }
    for (const verb of ["resolve", "resolve-related"]) subjects.add(`${contract.service}.${verb}`);
  }
  return [...subjects].sort();
}

/**
 * JetStream's API on `streams` only, and only what the services do there: make and update the
 * streams, read their state and messages, make, read and pull their consumers (never remove a
 * stream or a consumer, or purge one).
 */
function jetStreamApi(streams: string[]): string[] {
  return streams.flatMap((stream) => [
    ...["INFO", "CREATE", "UPDATE", "MSG.GET"].map((verb) => `$JS.API.STREAM.${verb}.${stream}`),
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.*`,
    `$JS.API.CONSUMER.INFO.${stream}.*`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.*`,
  ]);
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
