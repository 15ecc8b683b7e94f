// Which certificates the host trusts, as the Rust host does
// (host-example/src/net/tls.rs): the platform's roots — the system CA
// bundle, or, when set, `SSL_CERT_FILE` and `SSL_CERT_DIR` instead (as
// OpenSSL, Python and Go read them) — plus the policy's `[http] ca_files`.
// TLS 1.2 is the minimum.

import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';

/** The largest CA file read, as the Rust host's. */
const MAX_CA_FILE_BYTES = 16 * 1024 * 1024;
/** Where Linux and BSD systems keep their CA bundle (the places openssl-probe looks). */
const SYSTEM_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/ca-bundle.pem',
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem',
  '/etc/ssl/cert.pem',
  '/usr/local/share/certs/ca-root-nss.crt',
  '/usr/local/etc/openssl/cert.pem',
];
/** The lowest TLS version offered. */
export const MIN_TLS_VERSION = 'TLSv1.2';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM certificates of `text`. */
export function pemCertificates(text) {
  return text.match(PEM_CERTIFICATE) ?? [];
}

/** The certificates of a PEM file; throws an `Error` that says what is wrong with the file (never its contents). */
export function loadCaFile(file) {
  let text;
  try {
    const stat = fs.statSync(file);
    if (stat.size > MAX_CA_FILE_BYTES) throw Object.assign(new Error(), { code: 'EFBIG' });
    text = fs.readFileSync(file, 'latin1');
  } catch (e) {
    throw new Error(`cannot read ${file}: ${e.code ?? 'I/O error'}`);
  }
  const certs = pemCertificates(text);
  if (certs.length === 0) throw new Error(`${file} holds no PEM certificate (\`-----BEGIN CERTIFICATE-----\`)`);
  return certs;
}

function platformSources() {
  const file = process.env.SSL_CERT_FILE || null;
  const dir = process.env.SSL_CERT_DIR || null;
  return { file, dir };
}

/** Where the roots come from, in words, for errors. */
export function rootsDescription(caFiles) {
  const { file, dir } = platformSources();
  let out;
  if (file === null && dir === null) out = 'the system CA bundle';
  else {
    const named = [['SSL_CERT_FILE', file], ['SSL_CERT_DIR', dir]].filter(([, v]) => v !== null).map(([n, v]) => `${n}=${v}`);
    out = `${named.join(', ')} (instead of the system CA bundle)`;
  }
  return [out, ...caFiles].join(' + ');
}

/** The platform's roots as PEM texts: SSL_CERT_FILE/SSL_CERT_DIR when set, else the system bundle, else Node's bundled roots. */
function platformRoots() {
  const { file, dir } = platformSources();
  if (file !== null || dir !== null) {
    const certs = [];
    if (file !== null) certs.push(...readQuietly(file));
    for (const folder of (dir ?? '').split(':').filter(Boolean)) {
      let names = [];
      try {
        names = fs.readdirSync(folder);
      } catch {
        // An unreadable folder adds nothing, as OpenSSL reads it.
      }
      for (const name of names) certs.push(...readQuietly(path.join(folder, name)));
    }
    return certs;
  }
  for (const bundle of SYSTEM_BUNDLES) {
    const certs = readQuietly(bundle);
    if (certs.length) return certs;
  }
  return [...tls.rootCertificates];
}

function readQuietly(file) {
  try {
    return loadCaFile(file);
  } catch {
    return [];
  }
}

/** The CA certificates trusted under `caFiles`: the platform's roots plus those files'. */
export function trustedRoots(caFiles) {
  return [...platformRoots(), ...caFiles.flatMap(loadCaFile)];
}
