/**
 * An in-process mutex as a promise chain: `run` calls are executed one at a time, in call order.
 * A failing call does not break the chain.
 */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
