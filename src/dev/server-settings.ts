/**
 * The command-line settings every Temporal dev server of ours runs with —
 * `arena-source dev`, the test runner, tests that own a server, the bench — so
 * they all behave alike. Pure: scripts load it without the Temporal runtime.
 */
import { SEARCH_ATTRIBUTES } from '../api/search-attributes.js';

/**
 * Eager activity execution: the server hands an activity scheduled on the
 * workflow's own queue straight back to the worker that scheduled it (with the
 * workflow task's reply), which saves a matching round trip per resolve and
 * fetch. Production servers: set `system.enableActivityEagerExecution: true` in
 * dynamic config (see README).
 */
export const DEV_SERVER_FLAGS = ['--dynamic-config-value', 'system.enableActivityEagerExecution=true'] as const;

/** `temporal server start-dev` flags that register the typed search attributes. */
export const SEARCH_ATTRIBUTE_FLAGS: readonly string[] = SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=Keyword`]);
