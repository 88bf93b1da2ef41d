/**
 * A private NATS cluster for fault tests: N `nats-server` processes with JetStream, routed to
 * each other on 127.0.0.1 ports picked at random, their data in a temporary directory that is
 * removed on dispose. Never touches the shared NATS on 4222.
 *
 * @example
 * ```ts ignore
 * await using cluster = await startNatsCluster(3);
 * const bus = await Bus.connect({ url: cluster.natsUrl, prefix: "t", factsReplicas: 3 });
 * cluster.kill(await cluster.streamLeader(bus, "T_FACTS"));
 * ```
 */
import { freePort } from "@shared/net.ts";
import type { Bus } from "@shared/bus.ts";
import { jetstreamManager } from "@nats-io/jetstream";
import { eventually } from "./eventually.ts";
import { waitForNatsServer } from "./nats_server.ts";

export interface NatsNode {
  name: string;
  port: number;
  url: string;
  process?: Deno.ChildProcess;
}

export interface NatsCluster extends AsyncDisposable {
  nodes: NatsNode[];
  /** Every node's URL, comma-separated: the NATS_URL of the processes under test. */
  natsUrl: string;
  /** Stops a node by name (as JetStream reports it): SIGKILL unless `signal` says otherwise. */
  kill(name: string, signal?: Deno.Signal): Promise<NatsNode>;
  /**
   * Freezes a node (SIGSTOP) or thaws it (SIGCONT): a hung server, whose connections stay open
   * but answer nothing, unlike a killed one's, which are reset at once.
   */
  freeze(name: string, frozen: boolean): NatsNode;
  /** Starts a killed node again on its ports and waits until it accepts connections. */
  revive(name: string): Promise<NatsNode>;
  /** The node leading `stream` now (undefined while it has none). */
  streamLeader(bus: Bus, stream: string): Promise<string | undefined>;
}

function spawnNode(node: NatsNode, clusterPort: number, routes: string, dir: string) {
  return new Deno.Command("nats-server", {
    args: [
      ...["-a", "127.0.0.1", "-p", String(node.port), "-js", "-sd", `${dir}/${node.name}`],
      ...["--cluster", `nats://127.0.0.1:${clusterPort}`, "--routes", routes],
      ...["--cluster_name", "faults", "-n", node.name],
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/**
 * Starts `size` routed nodes. Ports are picked free but released before the servers bind them,
 * so another test may take one meanwhile: a start that fails is retried on new ports.
 */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  for (let attempt = 1;; attempt++) {
    try {
      return await tryStartNatsCluster(size);
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
}

async function tryStartNatsCluster(size: number): Promise<NatsCluster> {
  const dir = await Deno.makeTempDir({ prefix: "nats-cluster-" });
  const clusterPorts = Array.from({ length: size }, freePort);
  const routes = clusterPorts.map((p) => `nats://127.0.0.1:${p}`).join(",");
  // Names unique to this cluster: waitForNatsServer knows its nodes by them from another test's.
  const suffix = crypto.randomUUID().slice(0, 8);
  const nodes: NatsNode[] = clusterPorts.map((_, i) => {
    const port = freePort();
    return { name: `node${i + 1}-${suffix}`, port, url: `nats://127.0.0.1:${port}` };
  });
  const spawn = (node: NatsNode) =>
    node.process = spawnNode(node, clusterPorts[nodes.indexOf(node)], routes, dir);
  const processes = nodes.map(spawn);
  const cluster = clusterOf(nodes, dir, spawn);
  try {
    await Promise.all(
      nodes.map((node, i) => waitForNatsServer(processes[i], node.port, node.name)),
    );
  } catch (error) {
    await cluster[Symbol.asyncDispose]();
    throw error;
  }
  return cluster;
}

function clusterOf(
  nodes: NatsNode[],
  dir: string,
  spawn: (node: NatsNode) => Deno.ChildProcess,
): NatsCluster {
  const cluster: NatsCluster = {
    nodes,
    natsUrl: nodes.map((node) => node.url).join(","),
    async kill(name, signal = "SIGKILL") {
      const node = nodes.find((n) => n.name === name);
      if (!node?.process) throw new Error(`No running node ${name}`);
      node.process.kill(signal);
      await node.process.status;
      node.process = undefined;
      return node;
    },
    freeze(name, frozen) {
      const node = nodes.find((n) => n.name === name);
      if (!node?.process) throw new Error(`No running node ${name}`);
      node.process.kill(frozen ? "SIGSTOP" : "SIGCONT");
      return node;
    },
    async revive(name) {
      const node = nodes.find((n) => n.name === name);
      if (!node || node.process) throw new Error(`Cannot revive ${name}: it is running or unknown`);
      await waitForNatsServer(spawn(node), node.port, node.name);
      return node;
    },
    async streamLeader(bus, stream) {
      // JetStream may not answer at all while it elects its leaders: no leader then either.
      const jsm = await jetstreamManager(await bus.jetStreamConnection(), { timeout: 1000 }).catch(
        () => undefined,
      );
      const info = await jsm?.streams.info(stream).catch(() => undefined);
      return info?.cluster?.leader || undefined;
    },
    async [Symbol.asyncDispose]() {
      for (const node of nodes) {
        node.process?.kill("SIGKILL");
        await node.process?.status;
        node.process = undefined;
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return cluster;
}

/**
 * Waits (up to 20 s) until JetStream on `bus` can place a stream of 3 copies: the cluster
 * elected its meta leader and knows enough peers (right after start it refuses with "no suitable
 * peers").
 */
export async function waitForJetStream(bus: Bus): Promise<void> {
  const deadline = Date.now() + 20_000;
  const name = `READY_${crypto.randomUUID().slice(0, 8)}`;
  for (;;) {
    try {
      const jsm = await jetstreamManager(await bus.jetStreamConnection(), { timeout: 1000 });
      await jsm.streams.add({ name, subjects: [`ready.${name}`], num_replicas: 3 });
      await jsm.streams.delete(name);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** Steps `stream`'s leader down until `node` leads it (up to 30 s). */
export async function leadStreamOn(
  cluster: NatsCluster,
  bus: Bus,
  stream: string,
  node: string,
): Promise<void> {
  await eventually(
    async () => {
      if (await cluster.streamLeader(bus, stream) === node) return true;
      await (await bus.jetStreamConnection())
        .request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, undefined, { timeout: 2000 })
        .catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      return false;
    },
    30_000,
    `${stream} led by ${node}`,
  );
}
