import assert from "node:assert/strict";
import { serviceNames } from "@shared/contracts/mod.ts";

const composeFile = new URL("../compose.yaml", import.meta.url);

async function dockerCompose(): Promise<string | undefined> {
  try {
    const { success } = await new Deno.Command("docker-compose", {
      args: ["version"],
      stdout: "null",
    })
      .output();
    return success ? "docker-compose" : undefined;
  } catch {
    return undefined;
  }
}

Deno.test("[compose] compose.yaml runs every service and the gateway on Postgres and NATS", async () => {
  const text = await Deno.readTextFile(composeFile);
  for (const name of [...serviceNames, "gateway", "postgres", "nats-1", "nats-2", "nats-3"]) {
    assert.match(text, new RegExp(`^  ${name}:$`, "m"), `compose.yaml lacks service ${name}`);
  }
  for (const name of serviceNames) {
    assert.ok(text.includes(`services/${name}/main.ts`), `${name} does not run its main.ts`);
  }
  assert.match(text, /"-js"/, "NATS must run with JetStream");
});

Deno.test("[compose] compose.yaml runs NATS as a three-node cluster the services all know", async () => {
  const text = await Deno.readTextFile(composeFile);
  const routes = "nats://nats-1:6222,nats://nats-2:6222,nats://nats-3:6222";
  assert.equal(text.split(`"${routes}"`).length - 1, 3, "each node routes to all three");
  assert.equal(text.split('"--cluster_name"').length - 1, 3);
  assert.match(text, /NATS_URL: nats:\/\/nats-1:4222,nats:\/\/nats-2:4222,nats:\/\/nats-3:4222/);
  assert.match(text, /FACTS_REPLICAS: "3"/);
});

const composeBinary = await dockerCompose();

Deno.test({
  name: "[compose] docker-compose accepts compose.yaml",
  // .ci/run installs docker-compose; a developer machine without it still gets the tests above,
  // and sees this one as ignored (`apt-get install docker-compose` to run it).
  ignore: !composeBinary && !Deno.env.get("CI"),
}, async (t) => {
  const binary = composeBinary;
  // In CI it runs, and fails without the binary.
  assert.ok(binary, "docker-compose must be installed in CI (.ci/run does it)");
  await t.step("with JWT_SECRET set it is valid", async () => {
    const out = await new Deno.Command(binary, {
      args: ["-f", composeFile.pathname, "config", "-q"],
      env: { JWT_SECRET: "check" },
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  });
  await t.step("without JWT_SECRET it refuses to start processes that disagree", async () => {
    const out = await new Deno.Command(binary, {
      args: ["-f", composeFile.pathname, "config", "-q"],
      env: { JWT_SECRET: "" },
      clearEnv: true,
      stderr: "piped",
    }).output();
    assert.notEqual(out.code, 0);
  });
});

Deno.test("[compose] the gateway's healthcheck probes its own readiness, not /health", async () => {
  // /health turns 503 when any service is down: as a healthcheck it marked every gateway
  // unhealthy at once, though each serves the other services' routes.
  const text = await Deno.readTextFile(composeFile);
  const gateway = text.slice(text.indexOf("\n  gateway:\n"), text.indexOf("\nvolumes:"));
  assert.match(gateway, /healthcheck:[\s\S]*\/health\/ready/);
  assert.doesNotMatch(gateway, /\/health['")]/);
});
