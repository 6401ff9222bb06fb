/** Keeping credentials out of messages: a Redis URL's password. */

/** `url` with its password replaced by `***`; never the password itself. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparsable Redis URL>';
  }
}

/** The password of a URL, as written and decoded, to scrub from messages. */
export function passwordOf(url: string): string[] {
  try {
    const { password } = new URL(url);
    if (!password) return [];
    const decoded = decodeURIComponent(password);
    return decoded === password ? [password] : [password, decoded];
  } catch {
    return [];
  }
}
