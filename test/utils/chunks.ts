/** Cutting a byte input into chunks, for tests that feed decoders and parsers piece by piece. */

/** Cuts `input` at the given (unsorted, possibly repeated) offsets; repeated offsets yield empty chunks. */
export const splitAt = (input: Uint8Array, points: ReadonlyArray<number>): Array<Uint8Array> => {
  const sorted = [...points].sort((a, b) => a - b)
  const out: Array<Uint8Array> = []
  let previous = 0
  for (const point of sorted) {
    out.push(input.slice(previous, point))
    previous = point
  }
  out.push(input.slice(previous))
  return out
}
