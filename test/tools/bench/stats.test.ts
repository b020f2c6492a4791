import { describe, expect, it } from "vitest";
import {
  formatSpread,
  percentile,
  percentiles,
  renderTable,
  spread,
} from "../../../tools/bench/stats.js";

describe("bench statistics", () => {
  it("percentiles are nearest-rank over the sorted sample", () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1, unsorted
    expect(percentiles(values)).toEqual({ n: 100, p50: 50, p95: 95, p99: 99 });
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });

  it("a spread across runs ignores runs without the figure", () => {
    expect(spread([3, Number.NaN, 1, 2])).toEqual({ median: 2, min: 1, max: 3 });
    expect(formatSpread(spread([1.5, 1.25, 2]), 2, "×")).toBe("1.50× (1.25×–2.00×)");
    expect(formatSpread(spread([4]), 1)).toBe("4.0");
    expect(formatSpread(spread([]), 1)).toBe("–");
  });

  it("tables align the first column left and the others right", () => {
    expect(
      renderTable(
        ["path", "p50"],
        [
          ["bash", "4.5"],
          ["POST /execute", "120.0"],
        ],
      ),
    ).toBe(
      [
        "path             p50",
        "-------------  -----",
        "bash             4.5",
        "POST /execute  120.0",
      ].join("\n"),
    );
  });
});
