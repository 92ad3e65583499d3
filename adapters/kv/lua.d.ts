/**
 * `import claim from './lua/claim-9.lua'`: the script's source, includes expanded, as a string
 * inlined at build time (scripts/lua.mjs: tsup and vitest plugins).
 */
declare module '*.lua' {
  const source: string;
  export default source;
}
