// Installs the Express example's dependencies once (the browser test serves it), so that
// `npm ci && npm test` is all the set-up a fresh machine needs.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../examples/express/', import.meta.url));
if (!existsSync(`${dir}node_modules/express`)) {
  console.log('installing examples/express dependencies');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'inherit' });
}
