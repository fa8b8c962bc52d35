/**
 * The git host process (see host.ts): runs the GitRequests it is sent over its
 * IPC channel and sends the replies back; exits with its parent.
 */
import { runGit, type GitRequest } from './run.js';

process.on('disconnect', () => process.exit(0));
process.on('message', (m: { id: number; req: GitRequest }) => {
  void runGit(m.req).then((reply) => {
    if (process.connected) process.send?.({ id: m.id, reply });
  });
});
// Messages sent before this module ran would have been lost: the parent waits for this one.
process.send?.({ ready: true });
