// How a share's type reads in a table: "pdf", or "folder, 12 files" when the tracker counts them.

/** The type column's text for `share`. */
export function typeText(share) {
  if (share.type === "folder" && typeof share.files === "number") {
    return `folder, ${share.files} ${share.files === 1 ? "file" : "files"}`;
  }
  return share.type || "–";
}
