/**
 * Operations whose answers are applied here in the order they were
 * called. Redis answers one connection in order, but a publish may wait
 * for several answers (one per slot on a cluster) and a load for several
 * reads: what one queues here must not overtake what a deliver called
 * after it queues.
 */
export class CallOrder {
  readonly #inFlight: Array<{ ready: boolean; settle: () => void }> = [];

  /** Operations waiting for their answer or for an earlier one. */
  get pending(): number {
    return this.#inFlight.length;
  }

  /** `sent`, settled after every operation called before it. */
  ordered<T>(sent: Promise<T>): Promise<T> {
    const slot = { ready: false, settle: () => {} };
    this.#inFlight.push(slot);
    return new Promise<T>((resolve, reject) => {
      sent.then(
        (value) => {
          slot.settle = () => resolve(value);
        },
        (err: unknown) => {
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the command's own failure, passed on as it came
          slot.settle = () => reject(err);
        },
      ).finally(() => {
        slot.ready = true;
        let n = 0;
        while (n < this.#inFlight.length && (this.#inFlight[n] as { ready: boolean }).ready) (this.#inFlight[n++] as { settle: () => void }).settle();
        if (n > 0) this.#inFlight.splice(0, n);
      });
    });
  }
}
