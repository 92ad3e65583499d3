/**
 * The text of an HTML response: its charset from the `Content-Type` header or a `<meta charset>`,
 * decoded as browsers do (windows-1252 for latin1 and ASCII labels, UTF-8 when unknown).
 */
import { TextDecoder } from 'node:util';

const decoders = new Map<string, TextDecoder>();

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

function decoder(label: string): TextDecoder {
  let found = decoders.get(label);
  if (found === undefined) {
    try {
      found = new TextDecoder(label);
    } catch {
      found = decoders.get('utf-8') ?? new TextDecoder('utf-8');
    }
    decoders.set(label, found);
  }
  return found;
}

/** Decodes with the header's charset, else a `<meta charset>` in the first 1 kB, else UTF-8. */
export function decodeHtml(bytes: Uint8Array, contentType: string | null): string {
  let charset = contentType ? /charset\s*=\s*"?([\w.:-]+)/i.exec(contentType)?.[1] : undefined;
  if (charset === undefined) {
    const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 1024)).toString('latin1');
    charset = /<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)/i.exec(head)?.[1];
  }
  const label = (charset ?? 'utf-8').toLowerCase();
  return WINDOWS_1252.has(label) ? decodeWindows1252(bytes) : decoder(label).decode(bytes);
}
