/**
 * Git sources, in small modules:
 *   refs.ts    which commit a spec means (commit > name > semver > tag > branch > default branch), ls-remote
 *   fetch.ts   the fetch strategy: by id or by name, partial and sparse for a path
 *   cache.ts   the per-worker repository cache its fetches go through
 *   auth.ts    credentials from a Secret, as git's environment
 *   repo.ts    creating work trees and mirrors
 *   exec.ts    one git command (run.ts: through simple-git; host.ts: from a small process)
 *   errors.ts  git's and ssh's messages as typed errors
 *   paths.ts   where the bundle is in a checkout
 */
export { GIT_AUTH_DIR_PREFIX, prepareGitAuth } from './auth.js';
export { GitCache, gitCacheFor } from './cache.js';
export { classifyGitError } from './errors.js';
export type { GitOptions } from './exec.js';
export { fetchGitRef, type Checkout } from './fetch.js';
export { bundleDirOf } from './paths.js';
export { listingKey, pollListingMaxAgeMs, SharedListings, type ListingShare } from './shared-listings.js';
export { fetchTargetOf, resolveGitRef, seenCommit, semverTargetOf, type FetchTarget, type ResolvedRef, type SeenRevision } from './refs.js';
