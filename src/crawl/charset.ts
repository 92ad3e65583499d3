/**
 * The text of an HTML response: its charset from the `Content-Type` header or a `<meta charset>`,
 * decoded as browsers do (windows-1252 for latin1 and ASCII labels, UTF-8 when unknown).
 */
import { TextDecoder } from 'node:util';
import { sliceUsed, yieldToLoop } from './slices.js';

/** Code points of bytes 0x80–0x9F in windows-1252 (Node decodes them as C1 controls). */
const CP1252 = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d,
  0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
];
/** WHATWG labels of windows-1252 (latin1 and ASCII included, as browsers do). */
const WINDOWS_1252 = new Set([
  'windows-1252',
  'cp1252',
  'x-cp1252',
  'latin1',
  'l1',
  'iso-8859-1',
  'iso8859-1',
  'iso88591',
  'iso_8859-1',
  'iso_8859-1:1987',
  'iso-ir-100',
  'ibm819',
  'cp819',
  'csisolatin1',
  'ascii',
  'us-ascii',
  'ansi_x3.4-1968',
]);

function decodeWindows1252(bytes: Uint8Array): string {
  let out = '';
  for (let start = 0; start < bytes.length; start += 8192) {
    const end = Math.min(start + 8192, bytes.length);
    const codes = new Array<number>(end - start);
    for (let i = start; i < end; i++) {
      const b = bytes[i]!;
      codes[i - start] = b >= 0x80 && b <= 0x9f ? CP1252[b - 0x80]! : b;
    }
    out += String.fromCharCode(...codes);
  }
  return out;
}

/** Bytes of a body searched for a `<meta charset>`. */
const SNIFF_BYTES = 1024;
/** Bytes decoded at a time by {@link decodeHtmlSliced}: a fraction of a millisecond each. */
const PIECE_BYTES = 256 * 1024;

/** The charset label: the header's, else a `<meta charset>` in `head` (the body's first 1 kB), else UTF-8. */
function charsetOf(head: Uint8Array, contentType: string | null): string {
  let charset = contentType ? /charset\s*=\s*"?([\w.:-]+)/i.exec(contentType)?.[1] : undefined;
  if (charset === undefined) {
    const text = Buffer.from(head.buffer, head.byteOffset, Math.min(head.byteLength, SNIFF_BYTES)).toString('latin1');
    charset = /<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)/i.exec(text)?.[1];
  }
  return (charset ?? 'utf-8').toLowerCase();
}

/** Decodes with the header's charset, else a `<meta charset>` in the first 1 kB, else UTF-8. */
export function decodeHtml(bytes: Uint8Array, contentType: string | null): string {
  const label = charsetOf(bytes, contentType);
  return WINDOWS_1252.has(label) ? decodeWindows1252(bytes) : freshDecoder(label).decode(bytes);
}

/** The first `max` bytes of a body held as chunks. */
export function headOf(chunks: readonly Uint8Array[], max: number): Uint8Array {
  const first = chunks[0];
  if (first === undefined) return new Uint8Array(0);
  if (first.byteLength >= max || chunks.length === 1) return first.subarray(0, max);
  const head: Uint8Array[] = [];
  let size = 0;
  for (const chunk of chunks) {
    if (size >= max) break;
    head.push(chunk.subarray(0, max - size));
    size += head[head.length - 1]!.byteLength;
  }
  return Buffer.concat(head, size);
}

/** Encodings decoded a piece at a time. Node's streaming decoder throws on some invalid sequences of the legacy multi-byte ones (euc-jp, iso-2022-jp, gb18030) that decoding all at once replaces. */
const STREAMED = new Set(['utf-8', 'utf-16le', 'utf-16be']);

/**
 * {@link decodeHtml} for a body held as chunks, without joining them first: UTF-8 and UTF-16 a
 * quarter of a megabyte at a time, yielding to the event loop when the turn's slice is used up
 * (with `sliceMs` 0, before every piece); windows-1252 the same way. A multi-megabyte body took
 * tens of milliseconds to copy into one buffer and as long again to decode, in one turn. A
 * character split across two chunks decodes whole. Other charsets are joined and decoded at once.
 */
export async function decodeHtmlSliced(chunks: readonly Uint8Array[], contentType: string | null, sliceMs?: number): Promise<string> {
  const label = charsetOf(headOf(chunks, SNIFF_BYTES), contentType);
  const cp1252 = WINDOWS_1252.has(label);
  // A decoder of its own: streaming keeps a split character's first bytes between calls.
  const streaming = cp1252 ? null : freshDecoder(label);
  if (streaming !== null && !STREAMED.has(streaming.encoding)) {
    if (sliceUsed(sliceMs)) await yieldToLoop();
    return streaming.decode(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
  }
  let out = '';
  for (const chunk of chunks) {
    for (let at = 0; at < chunk.byteLength; at += PIECE_BYTES) {
      if (sliceUsed(sliceMs)) await yieldToLoop();
      const piece = chunk.subarray(at, at + PIECE_BYTES);
      out += streaming === null ? decodeWindows1252(piece) : streaming.decode(piece, { stream: true });
    }
  }
  // The end of the body: an unfinished character is a replacement character.
  return streaming === null ? out : out + streaming.decode();
}

function freshDecoder(label: string): TextDecoder {
  try {
    return new TextDecoder(label);
  } catch {
    return new TextDecoder('utf-8');
  }
}
