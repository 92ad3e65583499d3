// Installs the examples' dependencies once (the browser test serves the Express one, the Next.js
// test builds and starts the other), so that `npm ci && npm test` is all a fresh machine needs.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

for (const [name, marker] of [['express', 'express'], ['nextjs', 'next']]) {
  const dir = fileURLToPath(new URL(`../examples/${name}/`, import.meta.url));
  if (!existsSync(`${dir}node_modules/${marker}`)) {
    console.log(`installing examples/${name} dependencies`);
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'inherit', env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' } });
  }
}
