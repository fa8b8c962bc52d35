/**
 * The API's group, version and kind, apart from the TypeBox schema: workflow code
 * needs these strings, and importing the schema would put TypeBox into the
 * workflow bundle, which the worker evaluates once per cached workflow.
 */
export const API_GROUP = 'omnia.altairalabs.ai';
export const API_VERSION = `${API_GROUP}/v1alpha1`;
export const KIND = 'ArenaSource';
