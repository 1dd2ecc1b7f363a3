/**
 * Local names (downloads, background fetches) match as the tracker's lookups
 * do: the exact spelling wins, else the name in any case. A case-insensitive
 * match with several spellings is ambiguous, and the caller says so.
 *
 * @example
 * ```ts
 * matchingNames(["Big", "notes"], "big", (name) => name); // ["Big"]
 * ```
 */
export function matchingNames<T>(
  items: readonly T[],
  name: string,
  nameOf: (item: T) => string,
): T[] {
  const exact = items.filter((item) => nameOf(item) === name);
  if (exact.length > 0) return exact;
  const folded = name.toLowerCase();
  return items.filter((item) => nameOf(item).toLowerCase() === folded);
}

/** The distinct spellings among matches, to name them when more than one is found. */
export function spellings<T>(items: readonly T[], nameOf: (item: T) => string): string[] {
  return [...new Set(items.map(nameOf))];
}
