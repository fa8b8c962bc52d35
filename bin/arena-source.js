#!/usr/bin/env node
// The compiled CLI lives in dist/ (built by `npm ci` via the prepare script, or `npm run build`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  console.error('arena-source is not built yet: run `npm run build` (npm ci does it for you).');
  process.exit(1);
}
const { main } = await import(entry.href);
await main(process.argv);
