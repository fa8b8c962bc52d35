/**
 * Ignore rules (src/bundle/ignore.ts) on real directories: spec.ignore, nested
 * .sourceignore files with their own scope, Flux's VCS exclusions, git's
 * "nothing comes back below an excluded directory", and directories emptied by
 * exclusions dropped so that excluded-only changes pack to the same bytes.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ignoredEntries, ignoresFile, pruneIgnored, rebase, type IgnoreRules } from '../../src/bundle/ignore.js';
import { listArchive, packDirectory } from '../../src/bundle/pack.js';
import { snapshotWorkspace, workspaceRevision } from '../../src/sources/workspace.js';
import { DEFAULT_PACK_LIMITS } from '../../src/bundle/pack.js';

let tmp: string;
let n = 0;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'arena-ignore-'));
});
after(async () => rm(tmp, { recursive: true, force: true }));

async function tree(files: Record<string, string>): Promise<string> {
  const dir = join(tmp, `t${++n}`);
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    if (name.endsWith('/')) {
      await mkdir(join(dir, name), { recursive: true });
      continue;
    }
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}

const rules = (patterns?: string): IgnoreRules => ({ patterns, sourceIgnore: true, vcsDefaults: true });

describe('ignore rules', () => {
  it('spec.ignore uses gitignore syntax relative to the bundle root; later patterns win', async () => {
    const dir = await tree({ 'pack.json': '{}', 'a.md': '', 'b/a.md': '', 'b/keep.md': '', 'drafts/x.json': '', 'notes.txt': '' });
    const dropped = await ignoredEntries(dir, '', rules('# comment\n*.md\n!b/keep.md\n/drafts/\n\n'));
    assert.deepEqual(dropped, ['a.md', 'b/a.md', 'drafts']);
  });

  it("applies Flux's VCS exclusions, and only those (pictures are content)", async () => {
    const dir = await tree({ '.git/HEAD': '', '.gitignore': '', '.gitattributes': '', '.gitmodules': '', 'sub/.gitignore': '', 'pic.png': '', '.github/x.yml': '', 'pack.json': '{}' });
    // `.git` itself is left in place (the packer skips it; a checkout's git still needs it).
    assert.deepEqual(await ignoredEntries(dir, '', rules()), ['.gitattributes', '.gitignore', '.gitmodules', 'sub']);
    // A pattern of the user's can take a default back.
    assert.deepEqual(await ignoredEntries(dir, '', rules('!.gitignore')), ['.gitattributes', '.gitmodules']);
  });

  it('reads .sourceignore files at every depth, each for its own directory, nested ones winning; spec.ignore wins over all', async () => {
    const dir = await tree({
      '.sourceignore': '*.tmp\nsecret.txt\n',
      'a.tmp': '',
      'secret.txt': '',
      'sub/.sourceignore': '!keep.tmp\n/local.json\n',
      'sub/keep.tmp': '',
      'sub/other.tmp': '',
      'sub/local.json': '',
      'sub/deeper/local.json': '',
      'other/local.json': '',
      'other/secret.txt': '',
    });
    assert.deepEqual(await ignoredEntries(dir, '', rules()), ['a.tmp', 'other/secret.txt', 'secret.txt', 'sub/local.json', 'sub/other.tmp']);
    assert.deepEqual(await ignoredEntries(dir, '', rules('sub/keep.tmp\n!secret.txt')), ['a.tmp', 'sub/keep.tmp', 'sub/local.json', 'sub/other.tmp']);
  });

  it("nothing below an excluded directory comes back (git's rule)", async () => {
    const dir = await tree({ 'drafts/keep.md': '', 'drafts/x.md': '', 'pack.json': '' });
    assert.deepEqual(await ignoredEntries(dir, '', rules('drafts/\n!drafts/keep.md')), ['drafts']);
  });

  it('with a bundle path, .sourceignore files above it apply too; spec.ignore is relative to the bundle', async () => {
    const dir = await tree({ '.sourceignore': '*.bak\n/support/private/\n', 'support/pack.json': '', 'support/a.bak': '', 'support/private/x': '', 'support/drafts/y': '', 'other/z.bak': '' });
    assert.deepEqual(await ignoredEntries(dir, 'support', rules('/drafts/')), ['a.bak', 'drafts', 'private']);
  });

  it('drops directories emptied by exclusions, keeps directories that were empty', async () => {
    const dir = await tree({ 'pack.json': '', 'only-excluded/a.tmp': '', 'only-excluded/deep/b.tmp': '', 'empty/': '', 'mixed/a.tmp': '', 'mixed/b.md': '' });
    assert.deepEqual(await ignoredEntries(dir, '', rules('*.tmp')), ['mixed/a.tmp', 'only-excluded']);
    assert.equal(await pruneIgnored(dir, '', rules('*.tmp')), 2);
    const out = join(tmp, `p${++n}.tar.gz`);
    await packDirectory(dir, out);
    assert.deepEqual((await listArchive(out)).map((e) => e.path), ['empty', 'mixed', 'mixed/b.md', 'pack.json']);
  });

  it('packs to the same bytes when only excluded files differ', async () => {
    const files = { 'pack.json': '{"id":"x"}', 'prompts/a.md': 'A' };
    const one = await tree({ ...files, 'drafts/x.md': '1', 'scratch.tmp': '1' });
    const two = await tree({ ...files, 'drafts/y.md': '2', 'drafts/z/w.md': '2', 'more.tmp': '2', '.sourceignore': '' });
    for (const dir of [one, two]) await pruneIgnored(dir, '', rules('drafts/\n*.tmp\n.sourceignore'));
    const [a, b] = [join(tmp, `a${++n}.tar.gz`), join(tmp, `b${n}.tar.gz`)];
    assert.equal((await packDirectory(one, a)).checksum, (await packDirectory(two, b)).checksum);
  });

  it('does not follow a .sourceignore symlink, and tolerates a missing bundle directory', async () => {
    const dir = await tree({ 'rules.txt': '*.md\n', 'a.md': '' });
    await symlink('rules.txt', join(dir, '.sourceignore'));
    assert.deepEqual(await ignoredEntries(dir, '', rules()), []);
    assert.equal(await pruneIgnored(dir, 'no/such/path', rules('*')), 0);
  });

  it('workspace revisions hash only what is packed: editing an excluded file is a no-op', async () => {
    const dir = await tree({ 'pack.json': '{}', 'drafts/a.md': '1', '.sourceignore': 'drafts/\n' });
    const r = rules();
    const before = await workspaceRevision(dir, DEFAULT_PACK_LIMITS, r);
    await writeFile(join(dir, 'drafts', 'a.md'), '2');
    await writeFile(join(dir, 'drafts', 'b.md'), 'new');
    assert.equal(await workspaceRevision(dir, DEFAULT_PACK_LIMITS, r), before);
    const copy = join(tmp, `ws${++n}`);
    assert.equal(await snapshotWorkspace(dir, copy, DEFAULT_PACK_LIMITS, r), before, 'the snapshot hashes as resolve did');
    await writeFile(join(dir, 'pack.json'), '{"v":2}');
    assert.notEqual(await workspaceRevision(dir, DEFAULT_PACK_LIMITS, r), before);
  });

  it('a ConfigMap key is matched by spec.ignore alone', () => {
    assert.equal(ignoresFile('*.json', 'pack.json'), true);
    assert.equal(ignoresFile('*.yaml', 'pack.json'), false);
    assert.equal(ignoresFile(undefined, 'pack.json'), false);
  });

  it('moves nested patterns to the root the way git scopes them', () => {
    assert.deepEqual(rebase('*.md\n/a.json\nx/y\n!keep.md\n# c\n\nlogs/', 'sub'), ['sub/**/*.md', 'sub/a.json', 'sub/x/y', '!sub/**/keep.md', '# c', '', 'sub/**/logs/']);
    assert.deepEqual(rebase('*.md', 'we[ir]d'), ['we\\[ir\\]d/**/*.md']);
  });
});
