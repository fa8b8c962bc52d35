/**
 * packBundle, uploadArtifact and discardWorkDir run on the worker holding the
 * checkout (its own task queue); verifyArtifact runs anywhere the store is.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import type { BundleValidationRequest } from '../src/api/spec-rules.js';
import { archiveKey, archiveMemoFor, type PackedFacts } from '../src/bundle/archive-memo.js';
import { packDirectory } from '../src/bundle/pack.js';
import { extractTarGz, newBudget } from '../src/oci/extract.js';
import { BundleValidator } from '../src/bundle/validation.js';
import { artifactBytes } from '../src/observability/metrics.js';
import { FetchFailedError, InvalidBundleError, StorageFailedError } from '../src/errors.js';
import { contentPlaces } from './content.js';
import { ARCHIVE_FILE, readMemoNote } from './work-dir.js';
import type { ActivityDeps } from './deps.js';
import type {
  PackBundleInput,
  PackBundleResult,
  UploadArtifactInput,
  UploadArtifactResult,
  VerifyArtifactInput,
} from './types.js';

export function bundleActivities(deps: ActivityDeps) {
  const places = contentPlaces(deps);
  /** Work directories come back from history; only ever touch ones under our own root. */
  function ownWorkDir(dir: string): string {
    const full = resolve(dir);
    const rel = relative(resolve(deps.workRoot), full);
    if (rel === '' || rel.startsWith('..') || rel.includes(`..${sep}`) || resolve(deps.workRoot, rel) !== full) {
      throw new StorageFailedError(`work directory ${dir} is not under this worker's work root`);
    }
    return full;
  }

  const memo = archiveMemoFor(deps.workRoot);

  async function pack(root: string, bundleDir: string, archivePath: string, validation: BundleValidationRequest | undefined): Promise<PackedFacts> {
    const info = await stat(bundleDir).catch(() => null);
    if (!info?.isDirectory()) {
      // Content, not spec: a later revision may add the directory, so this is retried next interval.
      const shown = relative(join(root, 'content'), bundleDir) || '.';
      throw new FetchFailedError(`the bundle path "${shown}" does not exist in this revision`, { retryable: false });
    }
    // A new file, never a rewrite: an archive from an earlier attempt may be the memo's file (a hard link).
    await rm(archivePath, { force: true });
    const validator = validation ? new BundleValidator(validation) : undefined;
    const { checksum, size, files } = await packDirectory(bundleDir, archivePath, deps.packLimits, validator);
    const bundle = validator?.report();
    return { checksum, size, files, ...(bundle ? { bundle } : {}) };
  }

  return {
    async packBundle({ workDir, bundleDir, validation }: PackBundleInput): Promise<PackBundleResult> {
      const root = ownWorkDir(workDir);
      const archivePath = join(root, ARCHIVE_FILE);
      // The fetch may have named the tree (src/bundle/archive-memo.ts), or taken its archive from the memo.
      const note = await readMemoNote(root);
      const key = note ? archiveKey(note.tree, validation) : undefined;
      let packed: PackedFacts;
      if (note?.packed && archiveKey(note.tree, note.packed.validation) === key) {
        packed = note.packed.facts;
      } else {
        // Taken from the memo under another validation (a run from before validation): the same tree, from the archive.
        if (note?.packed) {
          await rm(bundleDir, { recursive: true, force: true });
          await mkdir(bundleDir, { recursive: true });
          await extractTarGz(archivePath, bundleDir, newBudget(deps.packLimits), { what: 'the memoized archive' });
        }
        packed = await pack(root, bundleDir, archivePath, validation);
        if (key) await memo?.remember(key, archivePath, packed);
      }
      const bundle = packed.bundle;
      if (bundle && !bundle.valid && validation?.mode === 'strict') {
        // The workflow discards the work directory (archive included) and keeps the last artifact.
        throw new InvalidBundleError(
          `the bundle is not valid and spec.validation is strict, so it is not published (fix it, or set spec.validation: warn): ${bundle.message}`,
        );
      }
      return { archivePath, checksum: packed.checksum, size: packed.size, files: packed.files, ...(bundle ? { bundle } : {}) };
    },

    /**
     * Publishes the archive: into the artifact store, and (with a content volume) as a
     * version directory. The version is staged before the store write and made visible
     * after it, so HEAD never names content whose artifact failed to store.
     */
    async uploadArtifact({ source, workDir, archivePath, checksum, target }: UploadArtifactInput): Promise<UploadArtifactResult> {
      const root = ownWorkDir(workDir);
      const content = deps.content;
      const loc = content && target ? await places.locate(source, target.targetPath) : undefined;
      const staged = loc ? await content!.stage(loc, archivePath, checksum, deps.packLimits, target!.history) : undefined;
      let stored;
      try {
        stored = await deps.store.put(source, archivePath, checksum);
      } catch (err) {
        if (staged) await content!.discard(staged);
        throw err;
      }
      artifactBytes.observe(stored.size);
      const published = staged ? await content!.commit(staged) : undefined;
      // Only on success: a retry of a failed upload needs the archive; the workflow discards it otherwise.
      await rm(root, { recursive: true, force: true });
      return {
        url: `${deps.artifactBaseUrl.replace(/\/+$/, '')}/${stored.key}`,
        checksum: stored.checksum,
        size: stored.size,
        ...(published ? { content: { workspace: loc!.workspace, ...published } } : {}),
      };
    },

    async discardWorkDir({ workDir }: { workDir: string }): Promise<void> {
      await rm(ownWorkDir(workDir), { recursive: true, force: true });
    },

    async verifyArtifact({ source, artifact }: VerifyArtifactInput): Promise<boolean> {
      if (!artifact.checksum) return false;
      return deps.store.verify(source, artifact.checksum);
    },
  };
}
