/** The non-retryable reasons the workflow's retry policy uses are derived from the error classes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as errors from '../../src/errors.js';

describe('errors', () => {
  it('NON_RETRYABLE_REASONS are the reasons whose error class is not retryable, in ConditionReasons order', () => {
    assert.deepEqual(errors.NON_RETRYABLE_REASONS, [
      'InvalidSpec',
      'InvalidTargetPath',
      'AuthenticationFailed',
      'SecretNotFound',
      'ArtifactTooLarge',
      'UnsafeContent',
      'InvalidBundle',
      'VerificationFailed',
    ]);
    const classes = (Object.values(errors) as unknown[]).filter(
      (v): v is new (message: string) => errors.ArenaSourceError => typeof v === 'function' && v.prototype instanceof errors.ArenaSourceError,
    );
    const instances = classes.map((C) => new C('x'));
    assert.deepEqual(instances.map((e) => e.reason).sort(), [...errors.ConditionReasons].sort(), 'one class per reason');
    for (const e of instances) assert.equal(errors.NON_RETRYABLE_REASONS.includes(e.reason), !e.retryable, e.name);
    assert.equal(new errors.FetchFailedError('x', { retryable: false }).retryable, false, 'one fetch failure can still stop retries');
  });
});
