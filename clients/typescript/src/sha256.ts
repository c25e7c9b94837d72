/**
 * SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104) in plain TypeScript.
 *
 * Webhook verification must be synchronous and dependency-free and must run
 * unchanged in browsers and in Node >= 18. `crypto.subtle` is async-only and
 * Node 18 has no global `crypto`, while `node:crypto` does not exist in
 * browsers, so the SDK carries its own small implementation.
 *
 * Words are read and written through big-endian DataViews, which keeps the code
 * independent of platform byte order and free of unchecked index accesses.
 */

const BLOCK_BYTES = 64;

/** Round constants: first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
const K = words([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** Initial hash value: first 32 bits of the fractional parts of the square roots of the first 8 primes. */
const H0 = words([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

function words(values: readonly number[]): DataView {
  const view = new DataView(new ArrayBuffer(values.length * 4));
  for (const [i, value] of values.entries()) {
    view.setUint32(i * 4, value);
  }
  return view;
}

/** Folds every complete 64-byte block of `msg` into the hash state `h` (8 words). */
function compress(h: DataView, w: DataView, msg: DataView): void {
  for (let off = 0; off + BLOCK_BYTES <= msg.byteLength; off += BLOCK_BYTES) {
    for (let i = 0; i < 64; i += 4) {
      w.setInt32(i, msg.getInt32(off + i));
    }
    for (let i = 64; i < 256; i += 4) {
      const w15 = w.getInt32(i - 60);
      const w2 = w.getInt32(i - 8);
      const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
      const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
      w.setInt32(i, w.getInt32(i - 64) + s0 + w.getInt32(i - 28) + s1);
    }

    let a = h.getInt32(0);
    let b = h.getInt32(4);
    let c = h.getInt32(8);
    let d = h.getInt32(12);
    let e = h.getInt32(16);
    let f = h.getInt32(20);
    let g = h.getInt32(24);
    let hh = h.getInt32(28);

    for (let i = 0; i < 256; i += 4) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K.getInt32(i) + w.getInt32(i)) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + S0 + maj) | 0;
    }

    // setInt32 wraps its argument modulo 2^32, so plain additions are enough.
    h.setInt32(0, h.getInt32(0) + a);
    h.setInt32(4, h.getInt32(4) + b);
    h.setInt32(8, h.getInt32(8) + c);
    h.setInt32(12, h.getInt32(12) + d);
    h.setInt32(16, h.getInt32(16) + e);
    h.setInt32(20, h.getInt32(20) + f);
    h.setInt32(24, h.getInt32(24) + g);
    h.setInt32(28, h.getInt32(28) + hh);
  }
}

/**
 * SHA-256 digest (32 bytes) of `data`.
 *
 * Exists so that webhook signing and verification stay synchronous and free of
 * runtime dependencies in browsers and in Node >= 18 alike.
 */
export function sha256(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  out.set(new Uint8Array(H0.buffer));
  const h = new DataView(out.buffer);
  const w = new DataView(new ArrayBuffer(256));
  compress(h, w, new DataView(data.buffer, data.byteOffset, data.byteLength));

  // Final block(s): leftover bytes, the 0x80 marker, zero fill, then the
  // message length in bits as a 64-bit big-endian integer.
  const rest = data.length % BLOCK_BYTES;
  const tail = new Uint8Array(rest < 56 ? BLOCK_BYTES : 2 * BLOCK_BYTES);
  tail.set(data.subarray(data.length - rest));
  tail[rest] = 0x80;
  const tailView = new DataView(tail.buffer);
  tailView.setUint32(tail.length - 8, Math.floor(data.length / 0x20000000));
  tailView.setUint32(tail.length - 4, (data.length << 3) >>> 0);
  compress(h, w, tailView);

  // The state is kept big-endian in `out`, so it already is the digest.
  return out;
}

/**
 * HMAC-SHA256 (RFC 2104) of `data` under `key`; keys longer than 64 bytes are hashed first.
 *
 * Standard Webhooks signatures are HMAC-SHA256; this computes them synchronously
 * and without dependencies, in browsers and in Node >= 18 alike.
 */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  // Zero-padded key XOR ipad / opad; the zero padding XORs to the pad bytes themselves.
  const inner = new Uint8Array(BLOCK_BYTES + data.length).fill(0x36, 0, BLOCK_BYTES);
  const outer = new Uint8Array(BLOCK_BYTES + 32).fill(0x5c, 0, BLOCK_BYTES);
  for (const [i, byte] of (key.length > BLOCK_BYTES ? sha256(key) : key).entries()) {
    inner[i] = byte ^ 0x36;
    outer[i] = byte ^ 0x5c;
  }
  inner.set(data, BLOCK_BYTES);
  outer.set(sha256(inner), BLOCK_BYTES);
  return sha256(outer);
}
