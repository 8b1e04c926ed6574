/**
 * Throwaway certificates for tests and benchmarks, made with `openssl` at run time in a temp
 * directory (nothing secret is committed): a CA, certificates it issues for host names and IPs,
 * and a second, unrelated CA. Keys are ECDSA P-256.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

/** A key and certificate, as PEM text and as files. */
export interface Issued {
  readonly key: string
  readonly cert: string
  readonly keyPath: string
  readonly certPath: string
  /** The certificate's serial number, upper-case hex without leading zeros (as Node's `getPeerCertificate().serialNumber`). */
  readonly serial: string
}

/** `--tls-cert PATH --tls-key PATH`, as the example servers take a certificate. */
export const flagsOf = (issued: Issued): ReadonlyArray<string> => ["--tls-cert", issued.certPath, "--tls-key", issued.keyPath]

/** A certificate authority that issues certificates. */
export interface Authority {
  readonly cert: string
  readonly certPath: string
  /** Issues a certificate for `hosts` (DNS names or IPs; the first is the subject's CN). */
  readonly issue: (
    name: string,
    options: { readonly hosts: ReadonlyArray<string>; readonly days?: number | undefined }
  ) => Issued
}

const openssl = (args: ReadonlyArray<string>, cwd: string): void => {
  ChildProcess.execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"], timeout: 20_000 })
}

const isIp = (host: string) => /^[\d.]+$/.test(host) || host.includes(":")

let serial = 0x1000

const makeAuthority = (dir: string, name: string): Authority => {
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}.key`], dir)
  openssl(
    ["req", "-new", "-x509", "-key", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", `/CN=${name} test CA`],
    dir
  )
  const certPath = Path.join(dir, `${name}.crt`)
  return {
    cert: Fs.readFileSync(certPath, "latin1"),
    certPath,
    issue: (leaf, options) => {
      const number = (++serial).toString(16).toUpperCase()
      const san = options.hosts.map((host) => `${isIp(host) ? "IP" : "DNS"}:${host}`).join(",")
      Fs.writeFileSync(Path.join(dir, `${leaf}.ext`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\n`)
      openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${leaf}.key`], dir)
      openssl(["req", "-new", "-key", `${leaf}.key`, "-out", `${leaf}.csr`, "-subj", `/CN=${options.hosts[0]}`], dir)
      openssl([
        "x509",
        "-req",
        "-in",
        `${leaf}.csr`,
        "-CA",
        `${name}.crt`,
        "-CAkey",
        `${name}.key`,
        "-set_serial",
        `0x${number}`,
        // negative: a certificate that expired before it was issued
        "-days",
        String(options.days ?? 2),
        "-extfile",
        `${leaf}.ext`,
        "-out",
        `${leaf}.crt`
      ], dir)
      const keyPath = Path.join(dir, `${leaf}.key`)
      const certPath = Path.join(dir, `${leaf}.crt`)
      return {
        key: Fs.readFileSync(keyPath, "latin1"),
        cert: Fs.readFileSync(certPath, "latin1"),
        keyPath,
        certPath,
        serial: number
      }
    }
  }
}

/** The certificates most tests need. */
export interface Certificates {
  readonly dir: string
  /** The CA clients trust. */
  readonly ca: Authority
  /** A CA nobody trusts. */
  readonly otherCa: Authority
  /** `localhost` and `127.0.0.1`, by `ca`. */
  readonly server: Issued
  /** The same names, a different key and serial (for reloads). */
  readonly renewed: Issued
  /** `localhost`, by `otherCa`. */
  readonly untrusted: Issued
  /** `localhost`, by `ca`, already expired. */
  readonly expired: Issued
  /** Only `elsewhere.test`, by `ca`: wrong for a client asking for `localhost`. */
  readonly wrongHost: Issued
}

/** Makes a fresh set in a temp directory, synchronously. The caller removes `dir`. */
export const makeUnsafe = (): Certificates => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "netkit-tls-"))
  const ca = makeAuthority(dir, "ca")
  const otherCa = makeAuthority(dir, "other-ca")
  const hosts = ["localhost", "127.0.0.1"]
  return {
    dir,
    ca,
    otherCa,
    server: ca.issue("server", { hosts }),
    renewed: ca.issue("renewed", { hosts }),
    untrusted: otherCa.issue("untrusted", { hosts }),
    expired: ca.issue("expired", { hosts, days: -1 }),
    wrongHost: ca.issue("wrong-host", { hosts: ["elsewhere.test"] })
  }
}

/** A fresh set for the current scope; the directory is removed when the scope closes. */
export const make: Effect.Effect<Certificates, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(makeUnsafe),
  (certificates) => Effect.sync(() => Fs.rmSync(certificates.dir, { recursive: true, force: true }))
)
