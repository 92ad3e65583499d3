// Types of scripts/lua.mjs, for the TypeScript configs that import it (tsup, vitest).
import type { Plugin as EsbuildPlugin } from 'esbuild';
import type { Plugin as VitePlugin } from 'vite';

/** Expands the `--- @include "..."` lines of one Lua file; `files`: every file it was built from. */
export function expandLua(file: string): { code: string; files: string[] };
/** esbuild plugin (tsup's `esbuildPlugins`): `.lua` imports become string modules. */
export function luaEsbuildPlugin(): EsbuildPlugin;
/** Vite plugin (vitest's `plugins`): `.lua` imports become string modules. */
export function luaVitePlugin(): VitePlugin;
