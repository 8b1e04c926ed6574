/**
 * Plain-text aligned tables for terminal output.
 */

export type Align = "left" | "right"

/**
 * Formats rows under headers; numeric-looking columns read best right-aligned,
 * so alignment is per column and defaults to left.
 */
export const formatTable = (
  headers: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>,
  align: ReadonlyArray<Align> = []
): string => {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => (row[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((cell, i) => (align[i] === "right" ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join(" | ")
      .trimEnd()
  const rule = widths.map((width) => "-".repeat(width)).join("-|-")
  return [line(headers), rule, ...rows.map((row) => line(headers.map((_, i) => row[i] ?? "")))].join("\n")
}

/** Fixed decimals with thousands separators, e.g. 12,345.6 */
export const num = (value: number, decimals = 0): string =>
  value.toLocaleString("en-US", { minimumFractionDigits: decimals, maximumFractionDigits: decimals })

/** Ratio as "0.85x"; "-" when either side is missing. */
export const ratio = (ours: number | undefined, anchor: number | undefined): string =>
  ours === undefined || anchor === undefined || anchor === 0 ? "-" : `${(ours / anchor).toFixed(2)}x`

/** CPU share as "85%"; "-" when unknown. */
export const pct = (value: number | null | undefined): string =>
  value === null || value === undefined ? "-" : `${value.toFixed(0)}%`
