// A test certificate authority made in the test, with node:crypto alone:
// ECDSA P-256 keys and X.509 v3 certificates written in DER by hand (the few
// ASN.1 forms a CA and a server certificate need).

import crypto from 'node:crypto';
import net from 'node:net';

function length(n) {
  if (n < 0x80) return Buffer.from([n]);
  const bytes = [];
  for (; n > 0; n >>= 8) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

const tlv = (tag, ...content) => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
};
const seq = (...items) => tlv(0x30, ...items);
const set = (...items) => tlv(0x31, ...items);
const explicit = (n, ...items) => tlv(0xa0 + n, ...items);
const octets = (bytes) => tlv(0x04, bytes);
const bits = (bytes) => tlv(0x03, Buffer.from([0]), bytes);
const utf8 = (text) => tlv(0x0c, Buffer.from(text, 'utf8'));
const bool = (value) => tlv(0x01, Buffer.from([value ? 0xff : 0]));

function integer(bytes) {
  return tlv(0x02, bytes[0] & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
}

function oid(text) {
  const [a, b, ...rest] = text.split('.').map(Number);
  const out = [40 * a + b];
  for (const arc of rest) {
    const chunk = [arc & 0x7f];
    for (let v = arc >> 7; v > 0; v >>= 7) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function time(date) {
  const text = date.toISOString().replace(/[-:T]/g, '').slice(2, 14);
  return tlv(0x17, Buffer.from(`${text}Z`));
}

const name = (cn) => seq(set(seq(oid('2.5.4.3'), utf8(cn))));
const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));
const extension = (id, critical, value) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

function altNames(hosts) {
  return seq(
    ...hosts.map((host) => (net.isIPv4(host) ? tlv(0x87, Buffer.from(host.split('.').map(Number))) : tlv(0x82, Buffer.from(host)))),
  );
}

function certificate({ subject, issuer, publicKey, signingKey, ca, hosts }) {
  const now = Date.now();
  const extensions = [extension('2.5.29.19', true, ca ? seq(bool(true)) : seq())];
  if (ca) extensions.push(extension('2.5.29.15', true, tlv(0x03, Buffer.from([1, 0x06]))));
  if (hosts) extensions.push(extension('2.5.29.17', false, altNames(hosts)));
  const serial = crypto.randomBytes(8);
  serial[0] &= 0x7f;
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))),
    integer(serial),
    ECDSA_SHA256,
    name(issuer),
    seq(time(new Date(now - 3600_000)), time(new Date(now + 86_400_000))),
    name(subject),
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, seq(...extensions)),
  );
  const signature = crypto.sign('sha256', tbs, { key: signingKey, dsaEncoding: 'der' });
  const der = seq(tbs, ECDSA_SHA256, bits(signature));
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;
}

const keyPair = () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });

/** A certificate authority that lives for the test: its PEM certificate, and `issue(hosts)` for servers. */
export class TestCa {
  constructor(cn = 'anthropic-wif test CA') {
    const { publicKey, privateKey } = keyPair();
    this.cn = cn;
    this.key = privateKey;
    this.cert = certificate({ subject: cn, issuer: cn, publicKey, signingKey: privateKey, ca: true });
  }

  /** A server certificate for `hosts` (names and IPv4 addresses): `{key, cert}` in PEM, for `https.createServer`. */
  issue(hosts) {
    const { publicKey, privateKey } = keyPair();
    const cert = certificate({ subject: hosts[0], issuer: this.cn, publicKey, signingKey: this.key, ca: false, hosts });
    return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }), cert };
  }
}
