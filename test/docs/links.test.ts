import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { anchorsOf, brokenLinks, headingSlug } from "../support/markdown-links.js";

/**
 * Guides the README links to before they exist in this branch. A link to one of these files may
 * point nowhere; once the file is here its links and anchors are checked like any other. Empty
 * this list when the files are in: a link to a missing file then fails.
 */
const PENDING_DOCS: readonly string[] = [];

const docs = readdirSync("docs")
  .filter((name) => name.endsWith(".md"))
  .map((name) => `docs/${name}`);

describe("README.md and docs/*.md", () => {
  it("have no broken relative link or anchor", () => {
    expect(brokenLinks(".", ["README.md", ...docs], PENDING_DOCS)).toEqual([]);
  });

  it("the README links to every page in docs/ and every pending guide", () => {
    const readme = readFileSync("README.md", "utf8");
    for (const page of [...docs, ...PENDING_DOCS]) expect(readme).toContain(`](${page})`);
  });

  it("the README stays a landing page (at most about 250 lines)", () => {
    expect(readFileSync("README.md", "utf8").split("\n").length).toBeLessThanOrEqual(260);
  });

  it("the README keeps the two commands (CI's .ci/run runs the test command)", () => {
    const readme = readFileSync("README.md", "utf8");
    expect(readme).toContain("| `scripts/boot` |");
    expect(readme).toContain("| `scripts/test` |");
    expect(readFileSync(".ci/run", "utf8")).toMatch(/^exec scripts\/test$/m);
  });
});

describe("GitHub heading anchors", () => {
  it.each([
    ["What is enforced — measured, not claimed", "what-is-enforced--measured-not-claimed"],
    ["Kernel isolation (launcher)", "kernel-isolation-launcher"],
    ["`POST /execute`", "post-execute"],
    ["`GET /demo/:name`", "get-demoname"],
    ["OpenAPI (`GET /openapi.json`, `GET /docs`)", "openapi-get-openapijson-get-docs"],
    ['How "blocked" is decided', "how-blocked-is-decided"],
    ["Docker / podman", "docker--podman"],
    ["snake_case stays", "snake_case-stays"],
    ["Size ½ MiB", "size--mib"],
    ["A [linked](https://example.com) word", "a-linked-word"],
  ])("%s → #%s", (heading, slug) => {
    expect(headingSlug(heading)).toBe(slug);
  });

  it("numbers repeated headings -1, -2 and ignores headings in code blocks", () => {
    const anchors = anchorsOf("# Usage\n## Usage\n```\n# Usage\n```\n### Usage\n");
    expect([...anchors]).toEqual(["usage", "usage-1", "usage-2"]);
  });
});

describe("brokenLinks", () => {
  const root = mkdtempSync(join(tmpdir(), "links-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, "docs"));
  writeFileSync(join(root, "docs/a.md"), "# A\n## Same\n## Same\n[up](../README.md#top)\n");
  writeFileSync(join(root, "code.ts"), "");
  const check = (readme: string, tolerate: readonly string[] = []) => {
    writeFileSync(join(root, "README.md"), `# Top\n\n${readme}\n`);
    return brokenLinks(root, ["README.md", "docs/a.md"], tolerate).map(
      ({ file, line, problem }) => `${file}:${line} ${problem}`,
    );
  };

  it("accepts existing files, headings, numbered duplicates and external links", () => {
    expect(
      check(
        "[a](docs/a.md) [b](docs/a.md#same-1) [c](#top) [d](code.ts) [e](https://x.invalid/#nope)",
      ),
    ).toEqual([]);
  });

  it("reports a missing file", () => {
    expect(check("[a](docs/missing.md)")).toEqual(["README.md:3 no file docs/missing.md"]);
  });

  it("reports a missing heading, in another file and in the same file", () => {
    expect(check("[a](docs/a.md#same-2)\n[b](#nowhere)")).toEqual([
      "README.md:3 no heading #same-2 in docs/a.md",
      "README.md:4 no heading #nowhere in README.md",
    ]);
  });

  it("reports links resolved from the linking file's own folder", () => {
    writeFileSync(join(root, "docs/b.md"), "# B\n[x](docs/a.md) [y](a.md#a)\n");
    expect(brokenLinks(root, ["docs/b.md"]).map((b) => b.problem)).toEqual([
      "no file docs/docs/a.md",
    ]);
  });

  it("ignores links in code, and tolerates only the listed missing files", () => {
    expect(check("`[a](nope.md)`\n```\n[b](nope.md)\n```")).toEqual([]);
    expect(check("[a](docs/later.md) [b](docs/other.md)", ["docs/later.md"])).toEqual([
      "README.md:3 no file docs/other.md",
    ]);
  });
});
