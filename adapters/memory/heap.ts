/** A binary min-heap on `at`, for the parked jobs of `memoryStorage()` (see ready.ts) and its webhook outbox. */

/** Whether `a` comes before `b`: earlier `at`, then lower `tie` (absent: 0). */
const before = (a: { at: number; tie?: number }, b: { at: number; tie?: number }) => a.at < b.at || (a.at === b.at && (a.tie ?? 0) < (b.tie ?? 0));

/**
 * A binary min-heap on `at` (then `tie`, for a stable order among equal times); stale items are
 * dropped lazily when they reach the top.
 */
export class MinHeap<T extends { at: number; tie?: number }> {
  private items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(item, items[parent]!)) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = item;
  }

  /** Drops the items `keep` refuses and restores the heap order. */
  compact(keep: (item: T) => boolean): void {
    const kept = this.items.filter(keep);
    this.items = [];
    for (const item of kept) this.push(item);
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && before(items[right]!, items[left]!) ? right : left;
      if (!before(items[child]!, last)) break;
      items[i] = items[child]!;
      i = child;
    }
    items[i] = last;
    return top;
  }
}
