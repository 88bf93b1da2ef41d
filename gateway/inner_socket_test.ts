import assert from "node:assert/strict";
import { removeDeadSocketDirs } from "./inner_socket.ts";

const LONG_AGO = new Date(Date.now() - 3_600_000);

/** A process listening on `path` until killed; resolves once it listens. */
async function listenerProcess(path: string): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `Deno.listen({ transport: "unix", path: ${JSON.stringify(path)} });
       console.log("listening"); await new Promise(() => {});`,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  assert.match(new TextDecoder().decode(value), /listening/);
  reader.releaseLock();
  return child;
}

async function killed(child: Deno.ChildProcess): Promise<void> {
  child.kill("SIGKILL");
  await child.status;
  await child.stdout.cancel();
}

async function names(base: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(base))).map((entry) => entry.name).sort();
}

Deno.test("[gateway] a start removes only the socket directories of gateways proven gone", async () => {
  const base = await Deno.makeTempDir({ prefix: "inner-socket-test-" });
  try {
    const dir = (name: string) => `${base}/${name}`;
    for (const name of ["gateway-killed", "gateway-live", "gateway-starting", "gateway-empty"]) {
      await Deno.mkdir(dir(name));
    }
    await Deno.mkdir(dir("other-old"));
    // Killed the way SIGKILL kills a gateway: its socket file stays, nothing listens on it.
    await killed(await listenerProcess(`${dir("gateway-killed")}/http.sock`));
    using live = Deno.listen({ transport: "unix", path: `${dir("gateway-live")}/http.sock` });
    for (const name of ["gateway-killed", "gateway-live", "gateway-empty", "other-old"]) {
      await Deno.utime(dir(name), LONG_AGO, LONG_AGO);
    }
    const removed = await removeDeadSocketDirs(base);
    assert.deepEqual(removed.sort(), [dir("gateway-empty"), dir("gateway-killed")]);
    assert.deepEqual(await names(base), ["gateway-live", "gateway-starting", "other-old"]);
    // The live gateway's socket still answers.
    (await Deno.connect({ transport: "unix", path: `${dir("gateway-live")}/http.sock` })).close();
    assert.ok(live.addr);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("[gateway] a gateway started after one killed with SIGKILL removes what it left", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "inner-socket-test-" });
  const module = new URL("./slow_clients.ts", import.meta.url).href;
  const gateway = () =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { serveGuarded } from "${module}";
         await serveGuarded({ hostname: "127.0.0.1", port: 0, headerTimeoutMs: 1000 },
           () => new Response("ok"));
         console.log("listening"); await new Promise(() => {});`,
      ],
      env: { TMPDIR: tmp },
      stdout: "piped",
      stderr: "null",
    }).spawn();
  const started = async (child: Deno.ChildProcess) => {
    const reader = child.stdout.getReader();
    assert.match(new TextDecoder().decode((await reader.read()).value), /listening/);
    reader.releaseLock();
    return child;
  };
  let second: Deno.ChildProcess | undefined;
  try {
    await killed(await started(gateway()));
    const [left] = await names(tmp);
    assert.match(left, /^gateway-/, "SIGKILL left the socket directory");
    await Deno.utime(`${tmp}/${left}`, LONG_AGO, LONG_AGO);
    second = await started(gateway());
    const deadline = Date.now() + 5_000;
    while ((await names(tmp)).includes(left) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const now = await names(tmp);
    assert.ok(!now.includes(left), "the killed gateway's directory was removed");
    assert.equal(now.length, 1, "the second gateway's own directory stays");
  } finally {
    if (second) await killed(second);
    await Deno.remove(tmp, { recursive: true });
  }
});
