import { describe, expect, test } from 'vitest';
import { memoryStorage } from '../adapters/memory/index.js';
import { CrawlEngineError } from '../src/core/errors.js';
import { runStorageConformance } from '../src/testing/index.js';

runStorageConformance({
  name: 'memory',
  storage: () => memoryStorage({ maxEventsPerJob: 20 }),
  test,
  describe,
  eventLimit: 20,
});

runStorageConformance({ name: 'memory with default limits', storage: () => memoryStorage(), test, describe });

describe('memoryStorage()', () => {
  test('rejects a bad maxEventsPerJob with the field name', () => {
    const attempt = () => memoryStorage({ maxEventsPerJob: 0 });
    expect(attempt).toThrow(CrawlEngineError);
    expect(attempt).toThrow(/maxEventsPerJob: expected an integer >= 1/);
  });

  test('says who it is', () => {
    const storage = memoryStorage();
    expect(storage.name).toBe('memory');
    expect(storage.capabilities).toEqual({ push: true, shared: false });
  });
});
