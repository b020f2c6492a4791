// The test network's data: stand-in addresses (addresses.tsv) and the names the DNS stub
// answers (names.tsv). Both files: whitespace-separated fields, '#' starts a comment.

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const NET_DIR = dirname(fileURLToPath(import.meta.url));

export interface StandInName {
  /** An exact name, or "*.domain" for the domain and every subdomain of it. */
  name: string;
  address: string;
}

export interface StandIns {
  addresses: string[];
  names: StandInName[];
}

/** The first `count` fields of every row that is not blank or a comment. */
function rows(file: string, count: number): string[][] {
  return readFileSync(file, "utf8")
    .split("\n")
    .map((line) => line.replace(/#.*/, "").trim())
    .filter((line) => line !== "")
    .map((line) => line.split(/\s+/).slice(0, count));
}

/** Reads both files; throws if one is empty or a name maps to an address not on the namespace. */
export function readStandIns(dir = NET_DIR): StandIns {
  const addresses = rows(join(dir, "addresses.tsv"), 1).map(([address = ""]) => address);
  const names = rows(join(dir, "names.tsv"), 2).map(([name = "", address = ""]) => ({
    name,
    address,
  }));
  if (addresses.length === 0 || names.length === 0) throw new Error(`empty data files in ${dir}`);
  for (const { name, address } of names) {
    if (!addresses.includes(address)) {
      throw new Error(
        `names.tsv maps ${name} to ${address}, which is not in addresses.tsv (it would be unreachable)`,
      );
    }
  }
  return { addresses, names };
}
