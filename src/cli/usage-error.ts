/** An error the CLI prints as-is (no stack): the message already tells the user what to do. */
export class UsageError extends Error {
  override name = 'UsageError';
}
