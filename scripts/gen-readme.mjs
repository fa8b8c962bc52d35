#!/usr/bin/env node
// Writes the README's configuration table from the options table (src/cli/options.ts), after `tsc`.
//   node scripts/gen-readme.mjs           rewrite README.md between the config-table markers
import { readFileSync, writeFileSync } from 'node:fs';
import { CONFIG_TABLE_END, CONFIG_TABLE_START, renderConfigTable } from '../dist/src/cli/options.js';

const file = new URL('../README.md', import.meta.url);
const text = readFileSync(file, 'utf8');
const start = text.indexOf(CONFIG_TABLE_START);
const end = text.indexOf(CONFIG_TABLE_END);
if (start < 0 || end < start) throw new Error(`README.md has no ${CONFIG_TABLE_START} … ${CONFIG_TABLE_END} section`);
writeFileSync(file, `${text.slice(0, start + CONFIG_TABLE_START.length)}\n${renderConfigTable()}\n${text.slice(end)}`);
console.log('README.md: configuration table written');
