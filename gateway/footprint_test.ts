import assert from "node:assert/strict";

/**
 * The modules `entry` loads when it starts: its static imports, followed to the end, without the
 * ones only imported on demand (`import()`), as `deno info` reports them.
 */
async function startupModules(entry: string): Promise<string[]> {
  const info = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.ok(info.success, `deno info ${entry} failed`);
  const graph = JSON.parse(new TextDecoder().decode(info.stdout)) as {
    roots: string[];
    modules: { specifier: string; dependencies?: Dependency[] }[];
  };
  const bySpecifier = new Map(graph.modules.map((module) => [module.specifier, module]));
  const loaded = new Set<string>();
  const pending = [...graph.roots];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (loaded.has(next)) continue;
    loaded.add(next);
    for (const dependency of bySpecifier.get(next)?.dependencies ?? []) {
      if (dependency.code && !dependency.isDynamic) pending.push(dependency.code.specifier);
    }
  }
  return [...loaded];
}

interface Dependency {
  code?: { specifier: string };
  isDynamic?: boolean;
}

// The gateway asks services but never serves their endpoints, so it needs none of the schemas
// that check their payloads: zod and the schemas cost an idle gateway ~10 MiB, a sixth of the
// memory beside its cache (README, "Benchmark"). A static import of a schema module from
// anything the gateway loads (a contract, the fact names, the bus) puts them back.
Deno.test("[gateway] starts without zod, the payload schemas or the database driver", async () => {
  const modules = await startupModules(new URL("./main.ts", import.meta.url).href);
  assert.ok(modules.some((module) => module.endsWith("/shared/contracts/mod.ts")));
  const unwanted = modules.filter((module) =>
    /^npm:(\/)?zod@|\/shared\/schemas\/|\/shared\/fact_catalog\.ts$|\/vendor\/postgres\//.test(
      module,
    )
  );
  assert.deepEqual(unwanted, []);
});
