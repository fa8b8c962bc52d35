/**
 * Writes the workflow bundle: `workflow-bundle-main.js <file>` (the worker's child process,
 * workflowBundleFile) or `workflow-bundle-main.js --prebuilt` (the build: dist/workflow-bundle.js
 * with its fingerprint; a no-op when it is current).
 */
import { writeFile } from 'node:fs/promises';
import { bundle, writePrebuiltBundle } from './workflow-bundle.js';

const out = process.argv[2];
if (!out) throw new Error('usage: workflow-bundle-main.js <output file> | --prebuilt');
if (out === '--prebuilt') await writePrebuiltBundle();
else await writeFile(out, (await bundle()).code);
