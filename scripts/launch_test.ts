import assert from "node:assert/strict";
import {
  denoRunArgs,
  GATEWAY_MALLOC_ENV,
  GATEWAY_V8_FLAGS,
  INSTANCE_ID_ENV,
  launchEnv,
  withInstanceId,
} from "./launch.ts";
import { serviceNames } from "@shared/contracts/mod.ts";

const read = (path: string) => Deno.readTextFile(new URL(`../${path}`, import.meta.url));

Deno.test("[launch] denoRunArgs gives the gateway its V8 flags and the services none", () => {
  assert.deepEqual(denoRunArgs("gateway/main.ts"), [
    "run",
    "-A",
    "--no-prompt",
    GATEWAY_V8_FLAGS,
    "gateway/main.ts",
  ]);
  assert.deepEqual(denoRunArgs("services/catalog/main.ts"), [
    "run",
    "-A",
    "--no-prompt",
    "services/catalog/main.ts",
  ]);
});

Deno.test("[launch] launchEnv gives the gateway its malloc settings and the services none", () => {
  assert.deepEqual(launchEnv("gateway/main.ts"), GATEWAY_MALLOC_ENV);
  assert.deepEqual(launchEnv("services/catalog/main.ts"), {});
});

Deno.test("[launch] deno.json and compose.yaml start the gateway with the same flags and malloc", async () => {
  const tasks = JSON.parse(await read("deno.json")).tasks as Record<string, string>;
  assert.match(tasks["start:gateway"], new RegExp(` ${GATEWAY_V8_FLAGS} gateway/main\\.ts$`));
  const compose = await read("compose.yaml");
  for (const [name, value] of Object.entries(GATEWAY_MALLOC_ENV)) {
    assert.ok(tasks["start:gateway"].includes(` ${name}=${value} `), `deno.json lacks ${name}`);
    assert.ok(compose.includes(`${name}: "${value}"`), `compose.yaml lacks ${name}`);
  }
  // The command's list, however `deno fmt` breaks it over lines (a trailing comma included).
  const command = compose.replace(/\s+/g, " ").replace(/, \]/g, " ]");
  assert.ok(
    command.includes(
      `command: [ "scripts/with_instance_id.sh", "deno", "run", "-A", "${GATEWAY_V8_FLAGS}", "gateway/main.ts" ]`,
    ),
    "compose.yaml's gateway command lacks the V8 flags of scripts/launch.ts",
  );
});

Deno.test("[launch] the gateway's V8 flags are ones this Deno accepts", async () => {
  // An unknown flag is refused at start ("V8 did not recognize flag"), exit code 1.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", GATEWAY_V8_FLAGS, ""],
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
});

Deno.test("[launch] deno task start names its own telemetry, not unknown_service:deno", async () => {
  // Deno reads OTEL_SERVICE_NAME once, as the process starts: the task has to set it. Each
  // process start.ts spawns gets its own name over it (scripts/start.ts).
  const tasks = JSON.parse(await read("deno.json")).tasks as Record<string, string>;
  assert.match(tasks.start, /^OTEL_SERVICE_NAME=start deno run -A scripts\/start\.ts$/);
});

Deno.test("[launch] each process gets a service.instance.id of its own, beside the operator's", () => {
  const a = withInstanceId(undefined);
  const b = withInstanceId(undefined);
  assert.match(a, /^service\.instance\.id=[0-9a-f-]{36}$/);
  assert.notEqual(a, b);
  assert.match(
    withInstanceId("deployment.environment=prod"),
    /^deployment\.environment=prod,service\.instance\.id=/,
  );
  assert.equal(withInstanceId("service.instance.id=catalog-1"), "service.instance.id=catalog-1");
});

const root = new URL("../", import.meta.url);

/** What OTEL_RESOURCE_ATTRIBUTES a process gets when launched as `command` says (`attributes`: the operator's). */
async function launchedWith(command: string[], attributes?: string): Promise<string> {
  const out = await new Deno.Command(command[0], {
    args: command.slice(1),
    cwd: root,
    env: attributes ? { OTEL_RESOURCE_ATTRIBUTES: attributes } : {},
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!;
}

const printAttributes = `console.log(Deno.env.get("OTEL_RESOURCE_ATTRIBUTES") ?? "none")`;

Deno.test("[launch] every start:<name> task gives its process a service.instance.id of its own", async (t) => {
  // Before, only `deno task start` did: two instances started by hand (the README's way to scale)
  // exported OTLP metrics under one identity, one series jumping between them.
  const tasks = JSON.parse(await read("deno.json")).tasks as Record<string, string>;
  for (const name of [...serviceNames, "gateway"]) {
    assert.ok(
      tasks[`start:${name}`].startsWith(`OTEL_SERVICE_NAME=${name} ${INSTANCE_ID_ENV} `),
      `start:${name} does not set OTEL_RESOURCE_ATTRIBUTES through scripts/instance_id.ts`,
    );
  }
  // The same prefix, in front of a process that prints what it got, run by deno task.
  const dir = await Deno.makeTempDir({ prefix: "oe_launch_" });
  try {
    const config = `${dir}/deno.json`;
    const task = `${INSTANCE_ID_ENV} deno eval '${printAttributes}'`;
    await Deno.writeTextFile(config, JSON.stringify({ tasks: { probe: task } }));
    const run = (attributes?: string) =>
      launchedWith([
        Deno.execPath(),
        "task",
        "-q",
        "--cwd",
        root.pathname,
        "--config",
        config,
        "probe",
      ], attributes);
    await t.step("two launches, two ids", async () => {
      const [a, b] = await Promise.all([run(), run()]);
      assert.match(a, /^service\.instance\.id=[0-9a-f-]{36}$/);
      assert.notEqual(a, b);
    });
    await t.step("beside the operator's attributes", async () => {
      assert.match(
        await run("deployment.environment=prod"),
        /^deployment\.environment=prod,service\.instance\.id=[0-9a-f-]{36}$/,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "[launch] compose.yaml starts every process through with_instance_id.sh, which gives each its own id",
  ignore: Deno.build.os === "windows",
  async fn() {
    const compose = (await read("compose.yaml")).replace(/\s+/g, " ");
    for (
      const script of [
        "services/catalog",
        "services/discounts",
        "services/payments",
        "services/audit",
        "gateway",
      ]
    ) {
      assert.match(
        compose,
        new RegExp(
          `command: \\[ ?"scripts/with_instance_id\\.sh", "deno", "run", "-A",[^\\]]* "${script}/main\\.ts"`,
        ),
        `compose.yaml runs ${script}/main.ts without scripts/with_instance_id.sh`,
      );
    }
    const run = (attributes?: string) =>
      launchedWith(
        ["scripts/with_instance_id.sh", Deno.execPath(), "eval", printAttributes],
        attributes,
      );
    const [a, b] = await Promise.all([run(), run()]);
    assert.match(a, /^service\.instance\.id=[0-9a-f-]{36}$/);
    assert.notEqual(a, b);
    assert.match(await run("k8s.pod.uid=x"), /^k8s\.pod\.uid=x,service\.instance\.id=/);
  },
});
