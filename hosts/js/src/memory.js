// A hard cap on the component's linear memory. V8 has no per-instance
// memory limit (and Worker `resourceLimits` bound the JavaScript heap only,
// not WebAssembly memory), so the cap is written into the core module
// itself: every memory it defines gets a maximum, and `memory.grow` past it
// fails inside the component (its allocator then traps), as Wasmtime's
// memory limit does for the Rust host.

/** Default cap of the component's linear memory: 64 MiB, as the Rust host's. */
export const DEFAULT_MAX_MEMORY_BYTES = 64 * 1024 * 1024;
const PAGE = 65536;
const MEMORY_SECTION = 5;

function readU32(bytes, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = bytes[at++];
    if (byte === undefined || shift > 28) throw new Error('the core module is malformed (a LEB128 number)');
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(byte & 0x80)) return [value, at];
  }
}

function u32(value) {
  const out = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value) byte |= 0x80;
    out.push(byte);
  } while (value);
  return out;
}

/**
 * The core module `bytes` with every memory it defines limited to
 * `maxBytes` (rounded down to whole 64 KiB pages; a smaller maximum of its
 * own is kept). Throws when the module needs more than that to start.
 */
export function capMemory(bytes, maxBytes) {
  const cap = Math.floor(maxBytes / PAGE);
  const parts = [bytes.subarray(0, 8)];
  let at = 8;
  while (at < bytes.length) {
    const id = bytes[at];
    const [size, start] = readU32(bytes, at + 1);
    const end = start + size;
    if (id !== MEMORY_SECTION) {
      parts.push(bytes.subarray(at, end));
      at = end;
      continue;
    }
    let [count, p] = readU32(bytes, start);
    const body = u32(count);
    for (; count > 0; count--) {
      const flags = bytes[p++];
      if (flags !== 0 && flags !== 1) throw new Error(`the component's memory has limits of a kind this host cannot cap (flags ${flags})`);
      let min;
      [min, p] = readU32(bytes, p);
      let max = cap;
      if (flags === 1) {
        let own;
        [own, p] = readU32(bytes, p);
        max = Math.min(own, cap);
      }
      if (min > max) throw new Error(`the component needs ${min * PAGE} bytes of memory to start, above the cap of ${maxBytes} bytes`);
      body.push(1, ...u32(min), ...u32(max));
    }
    parts.push(Uint8Array.from([MEMORY_SECTION, ...u32(body.length), ...body]));
    at = end;
  }
  return Buffer.concat(parts);
}
