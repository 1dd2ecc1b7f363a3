// The cells a share's row has in every table of shares: its type ("pdf", or "folder, 12 files"
// when the tracker counts them) and its size.
import { cell, el, formatBytes } from "./common.js";

/** The type column's text for `share`. */
export function typeText(share) {
  if (share.type === "folder" && typeof share.files === "number") {
    return `folder, ${share.files} ${share.files === 1 ? "file" : "files"}`;
  }
  return share.type || "–";
}

/** The size column's cell for `share`: the size in units, the exact bytes on hover. */
export function sizeCell(share) {
  return cell("Size", el("span", { title: `${share.size} bytes`, text: formatBytes(share.size) }));
}
