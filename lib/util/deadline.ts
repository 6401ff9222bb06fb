/**
 * The one timeout helper of the server side (the browser client has its
 * own timers): what `promise` gives, or the error `late()` makes once `ms`
 * have passed, whichever comes first. The timer is cleared when the race is
 * decided; `promise` is left running, and a rejection of it after the
 * deadline is not reported as unhandled. With `unref`, the timer does not
 * keep the process alive (a server's checks); without it, it does (a
 * command waiting for its answer).
 */
export async function withDeadline<T>(promise: Promise<T>, ms: number, late: () => Error, { unref = true }: { unref?: boolean } = {}): Promise<T> {
  promise.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late()), ms);
    if (unref) timer.unref();
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
