/**
 * Postgres migrations are frozen snapshots: once released, the SQL a migration runs must not change,
 * or a database migrated before would differ from one migrated after. The builders in
 * adapters/postgres/sql/ share fragments, so an edit meant for a new version could leak into an old
 * one; these fingerprints catch that. A new migration gets its fingerprint added here; an old
 * fingerprint never changes.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../adapters/postgres/schema.js';
import { oneOf } from '../adapters/postgres/sql/names.js';

const FROZEN: Record<number, string> = {
  1: '15551259556d6c20db873ca46d9ed8c4fc161a9691a2a2bb21b33ef20f906ad6',
  2: 'c52c442b36b36637961b3442693a0bf10a362968636587311daa4246ea7fe416',
  3: '56a2d08a2052a023f8cf5d5287077a208acd9c94bc95695103aa43f75beb616e',
  4: '5e725bd3377fce608078639d79c844cabf4538ea7fd724965128003a032e340f',
  5: '3e81ee06dd2558eeff722482d32e9f474b37953d37549e0b02b2305798be8e3b',
  6: '5a5abe0f9681285510fc089e4ac42a17fefd7e64b05d19cd5e3c467fbf91cb15',
  7: 'a87d71a15d0bd73225fce5d0d785f768e8538e062d7f5e6a0dc19bfbc30f1bd4',
  8: 'd79fa202ab35273d862e6ee9cb107eeec27b962be5e3d5696d2ab3fcfcf1bc09',
  9: 'c285cd9920c693aa46381cbd80905e8abf24020a9db3e2ad11d699b69518dfad',
  10: '36625b863601b21d778b3b175b01d971e72ed846cf0e1fdad241951d89d954f1',
};

const names = { schema: '"public"', prefix: 'crawl_' };
const fingerprint = (statements: string[]) => createHash('sha256').update(statements.join('\n;\n')).digest('hex');

describe('postgres migrations', () => {
  it('run the same SQL as when they were released', () => {
    const changed = MIGRATIONS.filter((m) => m.version in FROZEN && fingerprint(m.statements(names)) !== FROZEN[m.version]).map((m) => m.version);
    expect(changed, 'released migrations changed: add a new migration instead').toEqual([]);
  });

  it('have distinct, increasing versions, each fingerprinted', () => {
    const versions = MIGRATIONS.map((m) => m.version);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(new Set(versions).size).toBe(versions.length);
    expect(
      versions.filter((v) => !(v in FROZEN)),
      'add the fingerprint of each new migration to FROZEN',
    ).toEqual([]);
  });

  it('qualify every name with the schema and prefix', () => {
    const sql = MIGRATIONS.flatMap((m) => m.statements({ schema: '"s1"', prefix: 'p1_' })).join('\n');
    expect(sql).not.toMatch(/["']crawl_/);
    expect(sql).not.toContain('"public"');
    expect(sql).toContain('"s1"."p1_complete"');
    expect(sql).toContain('"s1"."p1_complete_many"');
  });

  it('emit the skip rule as a SQL test of the codes', () => {
    expect(oneOf('c', ['robots'])).toBe(`c = 'robots'`);
    expect(oneOf('c', ['robots', "it's"])).toBe(`c IN ('robots', 'it''s')`);
    expect(oneOf('c', [])).toBe('false');
    // The newest `complete` (version 3's signature, the one version 4's complete_many calls).
    const complete = MIGRATIONS.flatMap((m) => m.statements(names)).findLast((s) => s.includes('p_skipped jsonb'));
    expect(complete).toContain(`v_skipped := NOT v_ok AND (p_result->'error'->>'code') = 'robots';`);
  });
});
