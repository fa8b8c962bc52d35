// The worker bundles this file: it must export every workflow and nothing impure.
export { arenaSourceWorkflow } from './arena-source.js';
