import { readFileSync } from "node:fs";
import { parse } from "smol-toml";
import { describe, expect, it } from "vitest";
import { z } from "zod";

/**
 * wrangler.toml against the Containers fields we use (Cloudflare's Wrangler configuration and
 * instance-type reference). Strict objects: a misspelled key fails here instead of being
 * ignored at deploy time.
 */
const container = z.strictObject({
  class_name: z.string().min(1),
  image: z.string().min(1),
  max_instances: z.number().int().positive(),
  // Predefined instance types (vCPU / memory): lite 1/16, 256 MiB; basic 1/4, 1 GiB;
  // standard-1 1/2, 4 GiB; standard-2 1, 6 GiB; standard-3 2, 8 GiB; standard-4 4, 12 GiB.
  instance_type: z.enum(["basic", "standard-1", "standard-2", "standard-3", "standard-4"]),
});
const wrangler = z.strictObject({
  name: z.string().min(1),
  main: z.string().min(1),
  compatibility_date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  containers: z.array(container).length(1),
  durable_objects: z.strictObject({
    bindings: z.array(z.strictObject({ name: z.string(), class_name: z.string() })).min(1),
  }),
  migrations: z.array(
    z.strictObject({ tag: z.string(), new_sqlite_classes: z.array(z.string()).optional() }),
  ),
});

describe("wrangler.toml", () => {
  const config = wrangler.parse(parse(readFileSync("wrangler.toml", "utf8")));
  const [first] = config.containers;

  it("runs this repository's Dockerfile, on an instance type with room beyond the idle image (lite is 256 MiB)", () => {
    expect(first?.image).toBe("./Dockerfile");
    expect(first?.instance_type).not.toBe("lite");
  });

  it("leaves room for session instances besides the shared one (one instance per session)", () => {
    expect(first?.max_instances).toBeGreaterThan(1);
  });

  it("binds the container class that worker/index.ts exports", () => {
    const worker = readFileSync(config.main, "utf8");
    expect(worker).toMatch(new RegExp(`export class ${first?.class_name} extends Container`));
    expect(config.durable_objects.bindings.map((b) => b.class_name)).toContain(first?.class_name);
    expect(config.migrations.flatMap((m) => m.new_sqlite_classes ?? [])).toContain(
      first?.class_name,
    );
  });
});
