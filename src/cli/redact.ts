/** Storage URLs as the CLI prints them (the resume command): without their secrets. */

/** What a storage URL in the printed resume command shows instead of a secret. */
const SECRET_PLACEHOLDER = '<password>';
/** Query parameters of a storage URL that may hold a secret (or the path of one). */
const SECRET_PARAM = /pass|secret|key|token|^sslcert$/i;

/**
 * A storage URL for the terminal: its password and the values of query parameters that may hold
 * secrets replaced by SECRET_PLACEHOLDER. Null if it cannot be parsed (then nothing of it is shown).
 */
export function redactUrl(url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  // URL takes the userinfo up to the last @ of the authority: u:pa@ss@h has the password pa@ss.
  const userinfo = parsed.username === '' && parsed.password === '' ? '' : `${parsed.username}${parsed.password === '' ? '' : `:${SECRET_PLACEHOLDER}`}@`;
  const query = parsed.search
    .slice(1)
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const at = pair.indexOf('=');
      const rawName = at === -1 ? pair : pair.slice(0, at);
      let name = rawName;
      try {
        name = decodeURIComponent(rawName.replaceAll('+', ' '));
      } catch {
        // Malformed escapes: match the name as written.
      }
      return SECRET_PARAM.test(name) ? `${rawName}=${SECRET_PLACEHOLDER}` : pair;
    });
  // The fragment is not sent anywhere by a driver; it is dropped rather than checked.
  return `${parsed.protocol}//${userinfo}${parsed.host}${parsed.pathname}${query.length === 0 ? '' : `?${query.join('&')}`}`;
}
