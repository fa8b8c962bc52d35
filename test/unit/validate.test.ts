import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { InvalidSpecError } from '../../src/errors.js';
import { parseArenaSource } from '../../src/api/validate.js';
import { contentIdentity, normalizeBundlePath, parseOciUrl, redactUrl } from '../../src/api/spec-rules.js';

const doc = (spec: Record<string, unknown>, metadata: Record<string, unknown> = { name: 'x', namespace: 'arena' }) => ({
  apiVersion: 'omnia.altairalabs.ai/v1alpha1',
  kind: 'ArenaSource',
  metadata,
  spec,
});
const git = { type: 'git', interval: '5m', git: { url: 'https://example.com/acme/prompts.git' } };

function problems(spec: Record<string, unknown>): string {
  try {
    parseArenaSource(doc(spec));
  } catch (err) {
    assert.ok(err instanceof InvalidSpecError, String(err));
    return err.message;
  }
  assert.fail('expected InvalidSpecError');
}

describe('ArenaSource validation at the edge', () => {
  it('applies the defaults the CRD applies', () => {
    const a = parseArenaSource(doc(git, { name: 'x' }));
    assert.equal(a.metadata.namespace, 'default');
    assert.equal(a.spec.timeout, '60s');
    assert.equal(a.spec.suspend, false);
    assert.equal(a.spec.validation, 'warn');
    const cm = parseArenaSource(doc({ type: 'configmap', interval: '1m', configMap: { name: 'p' } }));
    assert.equal(cm.spec.configMap!.key, 'pack.json');
    const oci = parseArenaSource(doc({ type: 'oci', interval: '1h', oci: { url: 'oci://ghcr.io/acme/prompts:v2.0.0' } }));
    assert.equal(oci.spec.oci!.insecure, false);
  });

  it('accepts the specification examples and Omnia samples', () => {
    for (const file of ['../shared/compat/omnia/arenasource.samples.yaml', '../shared/compat/omnia-current/arenasource.samples.yaml']) {
      for (const d of parseAllDocuments(readFileSync(file, 'utf8'))) parseArenaSource(d.toJS());
    }
  });

  it('names the bad field in every message', () => {
    assert.match(problems({ ...git, type: 'svn' }), /spec\.type/);
    assert.match(problems({ ...git, interval: '5 minutes' }), /spec\.interval/);
    assert.match(problems({ ...git, interval: '' }), /spec\.interval/);
    assert.match(problems({ ...git, interval: '-1m' }), /spec\.interval/);
    assert.match(problems({ ...git, interval: '0s' }), /spec\.interval: must be positive/);
    assert.match(problems({ ...git, timeout: '48h' }), /spec\.timeout: must be at most 60m/);
    assert.match(problems({ type: 'git', interval: '1m' }), /spec\.git: required when type is "git"/);
    assert.match(problems({ ...git, oci: { url: 'oci://r/x:1' } }), /spec\.oci: must not be set when type is "git"/);
    assert.match(problems({ ...git, inteval: '5m' }), /inteval/);
    assert.match(problems({ ...git, git: { url: 'ftp://example.com/x.git' } }), /spec\.git\.url/);
    assert.match(problems({ ...git, git: { url: 'https://example.com/x.git', path: '../../etc' } }), /spec\.git\.path: must not contain "\.\."/);
    assert.match(problems({ ...git, git: { url: 'https://example.com/x.git', path: '/etc' } }), /spec\.git\.path: must be relative/);
    assert.match(problems({ ...git, git: { url: 'https://example.com/x.git', ref: { commit: 'abc123' } } }), /spec\.git\.ref\.commit: must be a full commit SHA/);
    assert.match(problems({ ...git, git: { url: 'https://example.com/x.git', ref: { branch: '--upload-pack=evil' } } }), /spec\.git\.ref\.branch/);
    assert.match(problems({ type: 'oci', interval: '1m', oci: { url: 'oci://' } }), /spec\.oci\.url/);
    assert.match(problems({ ...git, git: { url: 'https://example.com/x.git', ref: { branch: 'main', tag: 'v1' } } }), /spec\.git\.ref: set at most one of branch, tag, semver or name \(got branch and tag\)/);
    assert.match(problems({ type: 'configmap', interval: '1m', configMap: { name: 'Bad_Name' } }), /spec\.configMap\.name/);
    assert.match(problems({ ...git, validation: 'strictest' }), /spec\.validation: must be one of warn, strict \(got "strictest"\)/);
  });

  it('refuses a targetPath or workspace.path outside the namespace directory, naming the field (Omnia: InvalidTargetPath)', () => {
    assert.match(problems({ ...git, targetPath: '../other' }), /spec\.targetPath: must not contain "\.\."/);
    assert.match(problems({ ...git, targetPath: '/abs' }), /spec\.targetPath: must be relative to the workspace content root/);
    assert.match(problems({ ...git, targetPath: './' }), /spec\.targetPath: must name a directory below/);
    assert.match(problems({ ...git, targetPath: 'arena/x/.arena' }), /spec\.targetPath: must not name a "\.arena" directory/);
    assert.match(problems({ type: 'workspace', interval: '1m', workspace: { path: '../../x' } }), /spec\.workspace\.path: must not contain/);
    assert.match(problems({ type: 'workspace', interval: '1m' }), /spec\.workspace: required when type is "workspace"/);
    const ok = parseArenaSource(doc({ type: 'workspace', interval: '1m', workspace: { path: 'arena/projects/p' }, targetPath: 'arena/deployed/p' }));
    assert.equal(ok.spec.createVersionOnSync, true, 'the CRD default');
  });

  it('transport and verify fields: accepted in their shapes, impossible combinations named', () => {
    const a = parseArenaSource(
      doc({ ...git, git: { ...git.git, ref: { tag: 'v1' }, secretRef: { name: 'tls' }, proxySecretRef: { name: 'proxy' }, verify: { mode: 'TagAndHEAD', secretRef: { name: 'keys' } } } }),
    );
    assert.equal(a.spec.git!.verify!.mode, 'TagAndHEAD');
    assert.equal(parseArenaSource(doc({ ...git, git: { ...git.git, verify: { secretRef: { name: 'keys' } } } })).spec.git!.verify!.mode, 'HEAD');
    const oci = parseArenaSource(
      doc({ type: 'oci', interval: '1h', oci: { url: 'oci://r.example/p:v1', certSecretRef: { name: 'c' }, proxySecretRef: { name: 'p' }, verify: { provider: 'cosign', secretRef: { name: 'k' } } } }),
    );
    assert.equal(oci.spec.oci!.verify!.provider, 'cosign');
    assert.match(problems({ ...git, git: { ...git.git, verify: { mode: 'Tag', secretRef: { name: 'k' } } } }), /spec\.git\.verify\.mode: Tag verifies the annotated tag of spec\.git\.ref\.tag or spec\.git\.ref\.semver, neither of which is set/);
    assert.match(problems({ ...git, git: { url: 'ssh://git@example.com/a.git', proxySecretRef: { name: 'p' } } }), /spec\.git\.proxySecretRef: applies to https:\/\/ and http:\/\/ URLs only/);
    assert.match(problems({ ...git, git: { ...git.git, verify: { mode: 'Commit', secretRef: { name: 'k' } } } }), /spec\.git\.verify\.mode/);
    assert.match(problems({ type: 'oci', interval: '1h', oci: { url: 'oci://r.example/p:v1', verify: { provider: 'notation', secretRef: { name: 'k' } } } }), /spec\.oci\.verify\.provider/);
    assert.match(problems({ ...git, git: { ...git.git, verify: { mode: 'HEAD' } } }), /spec\.git\.verify\.secretRef/);
  });

  it('refuses credentials embedded in URLs and never echoes them', () => {
    const message = problems({ ...git, git: { url: 'https://bob:hunter2@example.com/x.git' } });
    assert.match(message, /must not embed credentials/);
    assert.doesNotMatch(message, /hunter2/);
    assert.equal(redactUrl('see https://bob:hunter2@h/x and ssh://git@h/y'), 'see https://bob:***@h/x and ssh://git@h/y');
  });

  it('accepts ssh URLs with a user name', () => {
    parseArenaSource(doc({ ...git, git: { url: 'ssh://git@github.com/acme/private-prompts.git' } }));
  });

  it('parses OCI references', () => {
    assert.deepEqual(parseOciUrl('oci://ghcr.io/acme/prompts:v2.0.0'), { registry: 'ghcr.io', repository: 'acme/prompts', tag: 'v2.0.0', digest: undefined });
    const d = `sha256:${'a'.repeat(64)}`;
    assert.deepEqual(parseOciUrl(`oci://127.0.0.1:5000/p@${d}`), { registry: '127.0.0.1:5000', repository: 'p', tag: undefined, digest: d });
    assert.equal(parseOciUrl('oci://ghcr.io/acme/prompts')?.tag, 'latest');
    assert.equal(parseOciUrl('oci://ghcr.io/Acme/prompts:v1'), undefined);
  });

  it('normalises bundle paths and keys content identity on what shapes the artifact', () => {
    assert.equal(normalizeBundlePath('./customer-support/'), 'customer-support');
    assert.equal(normalizeBundlePath(undefined), '');
    const a = parseArenaSource(doc({ ...git, git: { ...git.git, path: './a' } })).spec;
    const b = parseArenaSource(doc({ ...git, interval: '1h', git: { ...git.git, path: 'a/' } })).spec;
    const c = parseArenaSource(doc({ ...git, git: { ...git.git, path: 'b' } })).spec;
    assert.equal(contentIdentity(a), contentIdentity(b));
    assert.notEqual(contentIdentity(a), contentIdentity(c));
    // Strict validation decides what is published (switching re-judges the revision); warn is the old identity.
    const { validation: _default, ...unset } = a;
    assert.equal(contentIdentity({ ...a, validation: 'warn' }), contentIdentity(unset));
    assert.notEqual(contentIdentity({ ...a, validation: 'strict' }), contentIdentity(a));
  });
});
