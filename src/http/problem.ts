import type { FieldError } from '../core/errors.js';

/** Stable codes of HTTP problems. */
export type ProblemCode =
  | 'invalid_input'
  | 'invalid_json'
  | 'unsupported_media_type'
  | 'payload_too_large'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'not_implemented'
  | 'internal';

const TITLES: Record<ProblemCode, string> = {
  invalid_input: 'Invalid input',
  invalid_json: 'Malformed JSON body',
  unsupported_media_type: 'Unsupported media type',
  payload_too_large: 'Payload too large',
  unauthorized: 'Unauthorized',
  forbidden: 'Forbidden',
  not_found: 'Not found',
  method_not_allowed: 'Method not allowed',
  conflict: 'Conflict',
  not_implemented: 'Not implemented',
  internal: 'Internal error',
};

/** An RFC 9457 problem+json response with a stable `code`. */
export function problem(status: number, code: ProblemCode, detail: string, extra: { errors?: FieldError[]; headers?: Record<string, string> } = {}): Response {
  const body = {
    type: `urn:crawl-engine:problem:${code}`,
    title: TITLES[code],
    status,
    code,
    detail,
    ...(extra.errors ? { errors: extra.errors } : {}),
  };
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/problem+json', 'cache-control': 'no-store', ...extra.headers },
  });
}
