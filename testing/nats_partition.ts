/**
 * A private NATS cluster whose routes a test can take away: each node reads a configuration file,
 * and `cutOff` rewrites them without one node's routes and has every node reload (SIGHUP), every
 * node still running and serving its clients (a partition, where testing/nats_cluster.ts can only
 * kill or freeze nodes). JetStream on each node, data in a temp folder removed on dispose.
 *
 * @example
 * ```ts ignore
 * await using cluster = await startRoutedNodes(["a", "b", "c"]);
 * await cluster.cutOff(cluster.nodes[0].name); // a alone, b and c together
 * await cluster.reconnect();
 * ```
 */
import { freePort } from "@shared/net.ts";
import type { NatsNode } from "./nats_cluster.ts";
import { waitForNatsServer } from "./nats_server.ts";

export interface RoutedNodes extends AsyncDisposable {
  nodes: NatsNode[];
  /** Takes the routes of the node named `name` away, both ways. */
  cutOff(name: string): Promise<void>;
  /** Routes every node to every other again. */
  reconnect(): Promise<void>;
}

interface Node extends NatsNode {
  clusterPort: number;
  conf: string;
}

/**
 * Starts one routed node per label and waits until each accepts connections; again on other ports
 * when one was taken meanwhile (ports are picked free and released before the servers bind them).
 */
export async function startRoutedNodes(labels: string[]): Promise<RoutedNodes> {
  for (let attempt = 1;; attempt++) {
    try {
      return await tryStartRoutedNodes(labels);
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
}

async function tryStartRoutedNodes(labels: string[]): Promise<RoutedNodes> {
  const dir = await Deno.makeTempDir({ prefix: "nats-partition-" });
  const suffix = crypto.randomUUID().slice(0, 8);
  const nodes: Node[] = labels.map((label) => {
    const port = freePort();
    const name = `${label}-${suffix}`;
    return {
      name,
      port,
      url: `nats://127.0.0.1:${port}`,
      clusterPort: freePort(),
      conf: `${dir}/${name}.conf`,
    };
  });
  const configure = (node: Node, peers: Node[]) =>
    Deno.writeTextFile(
      node.conf,
      [
        `server_name: ${node.name}`,
        `listen: 127.0.0.1:${node.port}`,
        `jetstream { store_dir: "${dir}/${node.name}" }`,
        `cluster { name: partition, listen: 127.0.0.1:${node.clusterPort}, routes: [${
          peers.map((peer) => `"nats://127.0.0.1:${peer.clusterPort}"`).join(", ")
        }] }`,
      ].join("\n"),
    );
  const routeAll = async (alone?: string) => {
    for (const node of nodes) {
      const peers = node.name === alone
        ? []
        : nodes.filter((peer) => peer !== node && peer.name !== alone);
      await configure(node, peers);
    }
  };
  const reload = () => nodes.forEach((node) => node.process?.kill("SIGHUP"));
  const dispose = async () => {
    for (const node of nodes) {
      try {
        node.process?.kill("SIGKILL");
      } catch {
        // Gone already.
      }
      await node.process?.status;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await routeAll();
    for (const node of nodes) {
      node.process = new Deno.Command("nats-server", {
        args: ["-c", node.conf, "-l", `${dir}/${node.name}.log`],
        stdout: "null",
        stderr: "null",
      }).spawn();
    }
    for (const node of nodes) await waitForNatsServer(node.process!, node.port, node.name);
  } catch (error) {
    await dispose();
    throw error;
  }
  return {
    nodes,
    cutOff: async (name) => {
      await routeAll(name);
      reload();
    },
    reconnect: async () => {
      await routeAll();
      reload();
    },
    [Symbol.asyncDispose]: dispose,
  };
}
