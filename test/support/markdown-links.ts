import { existsSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

/** A relative link or anchor in a Markdown file that leads nowhere. */
export interface BrokenLink {
  file: string;
  line: number;
  target: string;
  problem: string;
}

/**
 * GitHub's heading anchor: the heading's text (code spans without their backticks, links by their
 * text), lowercased, every character but letters, marks, decimal and letter numbers, connector
 * punctuation, spaces and hyphens removed, spaces turned into hyphens.
 */
export function headingSlug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/`+/g, "")
    .replace(/<[^>]+>/g, "");
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{Nd}\p{Nl}\p{Pc} -]/gu, "")
    .replace(/ /g, "-");
}

/** Lines outside fenced code blocks, with their 1-based numbers. */
function proseLines(markdown: string): { text: string; line: number }[] {
  const out: { text: string; line: number }[] = [];
  let fence: string | null = null;
  markdown.split("\n").forEach((text, index) => {
    const marker = /^\s{0,3}(`{3,}|~{3,})/.exec(text)?.[1];
    if (marker !== undefined) {
      if (fence === null) fence = marker;
      else if (marker.startsWith(fence)) fence = null;
      return;
    }
    if (fence === null) out.push({ text, line: index + 1 });
  });
  return out;
}

/** Every anchor a file offers: its headings' slugs, a repeated slug numbered -1, -2, … */
export function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const { text } of proseLines(markdown)) {
    const heading = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(text)?.[1];
    if (heading === undefined) continue;
    const slug = headingSlug(heading);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  for (const match of markdown.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) {
    if (match[1] !== undefined) anchors.add(match[1]);
  }
  return anchors;
}

/** The link targets of a file (inline links and images, reference definitions), outside code. */
export function linksOf(markdown: string): { target: string; line: number }[] {
  const links: { target: string; line: number }[] = [];
  for (const { text, line } of proseLines(markdown)) {
    const prose = text.replace(/(`+)[^`]*?\1/g, "");
    for (const match of prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      if (match[1] !== undefined) links.push({ target: match[1], line });
    }
    const definition = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$/.exec(prose)?.[1];
    if (definition !== undefined) links.push({ target: definition, line });
  }
  return links;
}

/**
 * The relative links of `files` (paths from `root`) that name a missing file, or a heading a
 * Markdown file does not have. Links with a scheme (https:, mailto:) are not followed; a missing
 * file listed in `tolerateMissing` is not reported.
 */
export function brokenLinks(
  root: string,
  files: readonly string[],
  tolerateMissing: readonly string[] = [],
): BrokenLink[] {
  const broken: BrokenLink[] = [];
  const anchorCache = new Map<string, Set<string>>();
  const anchorsIn = (path: string): Set<string> => {
    let anchors = anchorCache.get(path);
    if (anchors === undefined) {
      anchors = anchorsOf(readFileSync(join(root, path), "utf8"));
      anchorCache.set(path, anchors);
    }
    return anchors;
  };
  for (const file of files) {
    for (const { target, line } of linksOf(readFileSync(join(root, file), "utf8"))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
      const hash = target.indexOf("#");
      const pathPart = decodeURI(hash === -1 ? target : target.slice(0, hash));
      const anchor = hash === -1 ? null : decodeURIComponent(target.slice(hash + 1));
      const resolved =
        pathPart === "" ? file : normalize(relative(root, join(root, dirname(file), pathPart)));
      const report = (problem: string) => broken.push({ file, line, target, problem });
      if (resolved.startsWith("..")) {
        report("leads outside the repository");
        continue;
      }
      if (!existsSync(join(root, resolved))) {
        if (!tolerateMissing.includes(resolved)) report(`no file ${resolved}`);
        continue;
      }
      if (anchor === null || anchor === "" || !resolved.endsWith(".md")) continue;
      if (!anchorsIn(resolved).has(anchor)) report(`no heading #${anchor} in ${resolved}`);
    }
  }
  return broken;
}
