import assert from "node:assert/strict";
import {
  denoRunArgs,
  GATEWAY_MALLOC_ENV,
  GATEWAY_V8_FLAGS,
  launchEnv,
  withInstanceId,
} from "./launch.ts";

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
    command.includes(`command: [ "deno", "run", "-A", "${GATEWAY_V8_FLAGS}", "gateway/main.ts" ]`),
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
