/**
 * Glob patterns as agentsh v0.16.9 compiles them (github.com/gobwas/glob): `*` is any run of
 * characters except the separator, `**` any run including it, `?` one non-separator character,
 * `[abc]` / `[!a-z]` a class, `{a,b}` alternatives, `\` escapes. Without a separator `*` and `**`
 * are the same. Compiled to an anchored RegExp once per pattern.
 */
export function compileGlob(pattern: string, separator?: string): RegExp {
  const notSep = separator ? `[^${escapeClass(separator)}]` : "[\\s\\S]";
  let source = "";
  let depth = 0;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (ch === "\\" && i + 1 < pattern.length) {
      source += escapeRegex(pattern[++i] as string);
    } else if (ch === "*") {
      if (pattern[i + 1] === "*") {
        source += "[\\s\\S]*";
        while (pattern[i + 1] === "*") i++;
      } else {
        source += `${notSep}*`;
      }
    } else if (ch === "?") {
      source += notSep;
    } else if (ch === "[") {
      const close = pattern.indexOf("]", i + 2);
      if (close === -1) {
        source += "\\[";
        continue;
      }
      let body = pattern.slice(i + 1, close);
      const negated = body.startsWith("!");
      if (negated) body = body.slice(1);
      source += `[${negated ? "^" : ""}${body.replace(/[\\\]^]/g, "\\$&")}]`;
      i = close;
    } else if (ch === "{") {
      source += "(?:";
      depth++;
    } else if (ch === "}" && depth > 0) {
      source += ")";
      depth--;
    } else if (ch === "," && depth > 0) {
      source += "|";
    } else {
      source += escapeRegex(ch);
    }
  }
  if (depth > 0) throw new Error(`unbalanced { in glob ${pattern}`);
  return new RegExp(`^${source}$`);
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
const escapeClass = (s: string) => s.replace(/[\\\]^-]/g, "\\$&");
