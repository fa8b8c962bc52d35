/** Child process of workflowBundleFile (workflow-bundle.ts): writes the workflow bundle to argv[2]. */
import { writeFile } from 'node:fs/promises';
import { bundle } from './workflow-bundle.js';

const out = process.argv[2];
if (!out) throw new Error('usage: workflow-bundle-main.js <output file>');
await writeFile(out, (await bundle()).code);
