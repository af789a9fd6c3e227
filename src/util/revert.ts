import { trace } from './trace.js';

/** Undo as you go (incus `revert`): steps run in reverse order; every error is collected. */
export class Reverter {
  private steps: { what: string; fn: () => void | Promise<void> }[] = [];

  add(what: string, fn: () => void | Promise<void>): void {
    this.steps.push({ what, fn });
  }

  /** Forget the steps: the work they would undo is now kept. */
  success(): void {
    this.steps = [];
  }

  async run(): Promise<Error[]> {
    const errors: Error[] = [];
    while (this.steps.length) {
      const s = this.steps.pop()!;
      try {
        await s.fn();
        trace(`undone: ${s.what}`);
      } catch (err) {
        errors.push(new Error(`undo ${s.what}: ${(err as Error).message}`, { cause: err }));
      }
    }
    return errors;
  }

  runSync(): Error[] {
    const errors: Error[] = [];
    while (this.steps.length) {
      const s = this.steps.pop()!;
      try {
        const r = s.fn();
        if (r instanceof Promise) r.catch(() => {});
      } catch (err) {
        errors.push(new Error(`undo ${s.what}: ${(err as Error).message}`, { cause: err }));
      }
    }
    return errors;
  }
}
