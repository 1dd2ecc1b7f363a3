/**
 * A hand-written SVG bar chart of every entry that has a target: one bar per
 * entry, scaled so that 1.0 is exactly the target (longer is better), with
 * the measured figure and the target written beside it, and a black tick
 * where the runtime's own floor for the same work lies, where measured.
 */
import { type Entry, formatNumber, formatTarget, type Machine, type Target } from "./results.ts";

const ROW = 26;
const LABEL_WIDTH = 230;
const BAR_WIDTH = 420;
const TEXT_WIDTH = 400;
const TOP = 56;
/** Bars are drawn up to this many times the target; longer ones are clipped and marked. */
const SCALE_MAX = 2;

/** How far `figure` is towards `target`: 1.0 or more always means met. */
function towards(target: Target, figure: number | null): number | null {
  if (figure === null || !Number.isFinite(figure)) return null;
  if (target.min !== undefined) return figure / target.min;
  if (target.max !== undefined) return figure > 0 ? target.max / figure : SCALE_MAX;
  return null;
}

/**
 * How far an entry got towards its target: figure / target for a minimum,
 * target / figure for a maximum, so 1.0 or more always means met.
 */
export function progress(e: Entry): number | null {
  if (!e.target) return null;
  return towards(e.target, e.target.on === "ratio" ? e.ratio : e.value);
}

/** How far the runtime's own floor for the same work got towards the entry's target. */
export function floorProgress(e: Entry): number | null {
  if (!e.target || e.floor === undefined) return null;
  if (e.target.on === "value") return towards(e.target, e.floor);
  return towards(e.target, e.baseline ? e.floor / e.baseline : null);
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function describe(e: Entry): string {
  const ratio = e.target?.on === "ratio";
  const figure = ratio
    ? `${formatNumber(e.ratio)}× (${formatNumber(e.value)} ${e.unit})`
    : `${formatNumber(e.value)} ${e.unit}`;
  let floor = "";
  if (e.floor !== undefined) {
    floor = ratio && e.baseline
      ? `; Deno ${formatNumber(e.floor / e.baseline)}×`
      : `; Deno ${formatNumber(e.floor)} ${e.unit}`;
  }
  return `${figure}; target ${formatTarget(e.target, e.unit)}${floor}`;
}

/** The chart as an SVG document. */
export function renderChart(entries: Entry[], machine: Machine): string {
  const rows = entries.filter((e) => e.target !== null);
  const width = LABEL_WIDTH + BAR_WIDTH + TEXT_WIDTH + 20;
  const height = TOP + rows.length * ROW + 40;
  const x0 = LABEL_WIDTH;
  const unit = BAR_WIDTH / SCALE_MAX;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">Shoal benchmarks: ` +
    `measured / target (1.0 = target met)</text>`,
    `<text x="10" y="38" fill="#555">${
      escape(
        `${machine.cpu}, ${machine.cores} cores, Deno ${machine.deno}, ${machine.date}` +
          (machine.quick ? " (quick run)" : "") +
          "; black tick: the plainest Deno program doing the same work, same run",
      )
    }</text>`,
  ];
  for (const tick of [0, 0.5, 1, 1.5, 2]) {
    const x = x0 + tick * unit;
    parts.push(
      `<line x1="${x}" y1="${TOP - 6}" x2="${x}" y2="${TOP + rows.length * ROW}" ` +
        `stroke="${tick === 1 ? "#222" : "#ddd"}" stroke-width="${tick === 1 ? 2 : 1}"/>`,
      `<text x="${x}" y="${
        TOP + rows.length * ROW + 16
      }" text-anchor="middle" fill="#555">${tick}</text>`,
    );
  }
  rows.forEach((e, i) => {
    const y = TOP + i * ROW;
    const p = progress(e);
    const length = p === null ? 0 : Math.min(p, SCALE_MAX) * unit;
    const colour = e.met ? "#2e8b57" : "#c0392b";
    parts.push(
      `<text x="${x0 - 8}" y="${y + 16}" text-anchor="end">${escape(e.name)}</text>`,
      `<rect x="${x0}" y="${y + 4}" width="${length.toFixed(1)}" height="${
        ROW - 8
      }" fill="${colour}"/>`,
    );
    const floor = floorProgress(e);
    if (floor !== null) {
      const x = (x0 + Math.min(floor, SCALE_MAX) * unit).toFixed(1);
      parts.push(
        `<line x1="${x}" y1="${y + 1}" x2="${x}" y2="${y + ROW - 1}" stroke="black" ` +
          `stroke-width="3"/>`,
      );
    }
    if (p !== null && p > SCALE_MAX) {
      parts.push(
        `<text x="${x0 + BAR_WIDTH - 4}" y="${y + 16}" text-anchor="end" fill="white">»</text>`,
      );
    }
    parts.push(
      `<text x="${x0 + BAR_WIDTH + 10}" y="${y + 16}">${escape(describe(e))}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
