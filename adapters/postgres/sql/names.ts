/** Naming and quoting shared by every SQL builder of the Postgres schema. */

export interface Names {
  /** Quoted schema, e.g. `"public"`. */
  schema: string;
  /** Table/function name prefix, e.g. `crawl_`. */
  prefix: string;
}

/** A fully qualified, quoted name: `"public"."crawl_jobs"`. */
export const qualified = (n: Names, name: string) => `${n.schema}."${n.prefix}${name}"`;

/** `qualified` bound to one schema and prefix: `const t = namer(n); t('jobs')`. */
export const namer =
  (n: Names) =>
  (name: string): string =>
    qualified(n, name);

/** A SQL string literal: `it's` → `'it''s'`. */
export const literal = (value: string) => `'${value.replace(/'/g, "''")}'`;

/**
 * A SQL test that `expr` is one of `values`: `expr = 'a'` for one value, `expr IN ('a', 'b')` for
 * several, `false` for none.
 */
export function oneOf(expr: string, values: readonly string[]): string {
  if (values.length === 0) return 'false';
  if (values.length === 1) return `${expr} = ${literal(values[0]!)}`;
  return `${expr} IN (${values.map(literal).join(', ')})`;
}
