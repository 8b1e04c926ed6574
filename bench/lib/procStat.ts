/**
 * CPU time of processes from /proc/<pid>/stat. Used both by the harness (to
 * find a server's process tree) and by load generators (to read the server's
 * CPU exactly at the edges of the measurement window).
 */
import { execFileSync } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"

let ticks: number | undefined

/** Kernel clock ticks per second (utime/stime unit); 100 on virtually all Linux. */
export const clockTicksPerSecond = (): number => {
  if (ticks === undefined) {
    try {
      const parsed = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim())
      ticks = Number.isFinite(parsed) && parsed > 0 ? parsed : 100
    } catch {
      ticks = 100
    }
  }
  return ticks
}

/**
 * Fields after the command name. The name is in parentheses and may itself
 * contain spaces or parentheses, so split after the last ")".
 */
const statFields = (pid: number): Array<string> | undefined => {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8")
    return text.slice(text.lastIndexOf(")") + 2).split(" ")
  } catch {
    return undefined
  }
}

/**
 * Sum of user+system CPU time (ms, all threads) of the given processes, or
 * null when none can be read (no /proc, or all have exited).
 */
export const readCpuMs = (pids: ReadonlyArray<number>): number | null => {
  const perSecond = clockTicksPerSecond()
  let total = 0
  let seen = false
  for (const pid of pids) {
    const fields = statFields(pid)
    if (fields === undefined) continue
    // utime and stime are stat fields 14 and 15, i.e. indexes 11 and 12 after the name
    total += Number(fields[11]) + Number(fields[12])
    seen = true
  }
  return seen ? (total * 1000) / perSecond : null
}

/**
 * The pid and all its descendants. A target launched through a wrapper (npx,
 * the tsx CLI) runs the real server in a child, whose CPU must be counted too.
 */
export const processTree = (rootPid: number): Array<number> => {
  const children = new Map<number, Array<number>>()
  let entries: Array<string>
  try {
    entries = readdirSync("/proc")
  } catch {
    return [rootPid]
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    const fields = statFields(Number(entry))
    if (fields === undefined) continue
    const ppid = Number(fields[1])
    const list = children.get(ppid) ?? []
    list.push(Number(entry))
    children.set(ppid, list)
  }
  const result: Array<number> = []
  const queue = [rootPid]
  while (queue.length > 0 && result.length < 1000) {
    const pid = queue.shift() as number
    result.push(pid)
    queue.push(...(children.get(pid) ?? []))
  }
  return result
}

/**
 * Busy CPU time (ms) of the whole machine, all cores, from /proc/stat; null
 * when unreadable. Busy minus server minus load generator over a window is
 * the background load that may have disturbed it (other jobs on the box).
 */
export const readMachineBusyMs = (): number | null => {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? ""
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number)
    const busy = [user, nice, system, irq, softirq, steal].reduce<number>((sum, v) => sum + (v ?? 0), 0)
    return Number.isFinite(busy) ? (busy * 1000) / clockTicksPerSecond() : null
  } catch {
    return null
  }
}

/** Resident set size (bytes) of a process from /proc/<pid>/status; null when unreadable. */
export const readRssBytes = (pid: number): number | null => {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return match === null ? null : Number(match[1]) * 1024
  } catch {
    return null
  }
}

/** Soft limit on open files of a process from /proc/<pid>/limits; null when unreadable, Infinity when unlimited. */
export const readFileLimit = (pid: number): number | null => {
  try {
    const match = /^Max open files\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, "utf8"))
    if (match === null) return null
    return match[1] === "unlimited" ? Infinity : Number(match[1])
  } catch {
    return null
  }
}
