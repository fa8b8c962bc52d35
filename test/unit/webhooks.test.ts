/**
 * The pure parts of push webhooks: repository keys, the refs a source follows,
 * signature checks, the payload parsers and the visibility query they make.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { gitRepositoryKey, ociRepositoryKey, watchKeys } from '../../src/api/repository-key.js';
import type { ArenaSourceSpec } from '../../src/api/schema.js';
import { parsePayload } from '../../src/webhooks/payloads.js';
import { verifyDelivery } from '../../src/webhooks/verify.js';
import { pushQuery } from '../../src/webhooks/wake.js';

const SECRET = Buffer.from('It is a secret');
const hmac = (body: string) => createHmac('sha256', SECRET).update(body).digest('hex');

describe('repository keys', () => {
  it('one key for every spelling of a repository', () => {
    const forms = [
      'https://github.com/Org/Repo.git',
      'https://GitHub.com/org/repo',
      'http://github.com/org/repo/',
      'https://x-access-token:t0k3n@github.com:443/org/repo.git',
      'git@github.com:org/repo.git',
      'github.com:Org/Repo',
      'ssh://git@github.com/org/repo.git',
      'ssh://git@github.com:22/org/repo',
      'git://github.com/org/repo.git',
    ];
    for (const form of forms) assert.equal(gitRepositoryKey(form), 'git:github.com/org/repo', form);
  });

  it('keeps what tells repositories apart: other ports, hosts and paths', () => {
    assert.equal(gitRepositoryKey('http://gitea.local:3000/org/repo.git'), 'git:gitea.local:3000/org/repo');
    assert.equal(gitRepositoryKey('ssh://git@gitea.local:2222/org/repo.git'), 'git:gitea.local:2222/org/repo');
    assert.equal(gitRepositoryKey('https://gitlab.com/group/sub/repo.git'), 'git:gitlab.com/group/sub/repo');
    assert.notEqual(gitRepositoryKey('https://github.com/org/repo'), gitRepositoryKey('https://github.com/org/repo2'));
    assert.equal(gitRepositoryKey('not a url'), undefined);
    assert.equal(gitRepositoryKey('https://github.com/'), undefined);
  });

  it('OCI: registry and repository, Docker Hub by one name', () => {
    assert.equal(ociRepositoryKey('Registry.Example:5000', 'team/prompts'), 'oci:registry.example:5000/team/prompts');
    assert.equal(ociRepositoryKey('index.docker.io', 'library/x'), ociRepositoryKey('docker.io', 'library/x'));
  });

  it('the ref a source follows; pinned sources name none a push moves', () => {
    const git = (ref?: Record<string, string>): ArenaSourceSpec => ({ type: 'git', git: { url: 'https://h/o/r.git', ...(ref ? { ref } : {}) } }) as ArenaSourceSpec;
    assert.deepEqual(watchKeys(git({ branch: 'main' })), { repository: 'git:h/o/r', ref: 'branch:main' });
    assert.deepEqual(watchKeys(git({ tag: 'v1' })), { repository: 'git:h/o/r', ref: 'tag:v1' });
    assert.deepEqual(watchKeys(git()), { repository: 'git:h/o/r', ref: 'default' });
    assert.equal(watchKeys(git({ branch: 'main', commit: 'a'.repeat(40) })).ref, 'commit');
    const oci = (url: string) => watchKeys({ type: 'oci', oci: { url } } as ArenaSourceSpec);
    assert.deepEqual(oci('oci://reg:5000/team/p:v2'), { repository: 'oci:reg:5000/team/p', ref: 'tag:v2' });
    assert.deepEqual(oci('oci://reg:5000/team/p'), { repository: 'oci:reg:5000/team/p', ref: 'tag:latest' });
    assert.equal(oci(`oci://reg/team/p@sha256:${'b'.repeat(64)}`).ref, 'digest');
    assert.deepEqual(watchKeys({ type: 'configmap', configMap: { name: 'x' } } as ArenaSourceSpec), { repository: '', ref: '' });
  });
});

describe('signatures', () => {
  const body = Buffer.from('{"ref":"refs/heads/main"}');
  it('GitHub, generic: sha256=<HMAC>; Gitea: bare hex; GitLab: the token; registry: a bearer token', () => {
    const sig = hmac(body.toString());
    assert.ok(verifyDelivery('github', SECRET, body, { 'x-hub-signature-256': `sha256=${sig}` }));
    assert.ok(verifyDelivery('generic', SECRET, body, { 'x-signature-256': `sha256=${sig.toUpperCase()}` }));
    assert.ok(verifyDelivery('gitea', SECRET, body, { 'x-gitea-signature': sig }));
    assert.ok(verifyDelivery('gitlab', SECRET, body, { 'x-gitlab-token': SECRET.toString() }));
    assert.ok(verifyDelivery('registry', SECRET, body, { authorization: `Bearer ${SECRET.toString()}` }));
  });
  it('refuses a wrong, truncated, other-body or missing signature', () => {
    const sig = hmac(body.toString());
    assert.ok(!verifyDelivery('github', SECRET, body, {}));
    assert.ok(!verifyDelivery('github', SECRET, body, { 'x-hub-signature-256': sig })); // prefix missing
    assert.ok(!verifyDelivery('github', SECRET, body, { 'x-hub-signature-256': `sha256=${sig.slice(0, 63)}` }));
    assert.ok(!verifyDelivery('github', SECRET, Buffer.from('{"ref":"refs/heads/evil"}'), { 'x-hub-signature-256': `sha256=${sig}` }));
    assert.ok(!verifyDelivery('gitea', SECRET, body, { 'x-gitea-signature': hmac('other') }));
    assert.ok(!verifyDelivery('gitlab', SECRET, body, { 'x-gitlab-token': 'guess' }));
    assert.ok(!verifyDelivery('gitlab', SECRET, body, { 'x-gitlab-token': '' }));
    assert.ok(!verifyDelivery('registry', SECRET, body, { authorization: `Basic ${SECRET.toString()}` }));
  });
});

describe('payloads', () => {
  const github = { ref: 'refs/heads/main', repository: { clone_url: 'https://github.com/Org/Repo.git', ssh_url: 'git@github.com:Org/Repo.git', default_branch: 'main' } };
  it('a GitHub push of the default branch moves branch and default-branch sources', () => {
    assert.deepEqual(parsePayload('github', github, { 'x-github-event': 'push' }), {
      pushes: [{ repositories: ['git:github.com/org/repo'], refs: ['branch:main', 'default'] }],
    });
    assert.deepEqual(parsePayload('github', { ...github, ref: 'refs/heads/dev' }, { 'x-github-event': 'push' }), {
      pushes: [{ repositories: ['git:github.com/org/repo'], refs: ['branch:dev'] }],
    });
    assert.deepEqual(parsePayload('github', { zen: 'hi' }, { 'x-github-event': 'ping' }), { ignored: 'GitHub event ping is not a push' });
  });
  it('GitLab tag pushes, Gitea pushes, generic pushes', () => {
    const gitlab = { object_kind: 'tag_push', ref: 'refs/tags/v1', project: { git_http_url: 'https://gitlab.example/g/r.git', git_ssh_url: 'git@gitlab.example:g/r.git', default_branch: 'main' } };
    assert.deepEqual(parsePayload('gitlab', gitlab, {}), { pushes: [{ repositories: ['git:gitlab.example/g/r'], refs: ['tag:v1'] }] });
    const gitea = { ref: 'refs/heads/main', repository: { clone_url: 'http://gitea:3000/o/r.git', ssh_url: 'ssh://git@gitea:2222/o/r.git' } };
    assert.deepEqual(parsePayload('gitea', gitea, { 'x-gitea-event': 'push' }), {
      pushes: [{ repositories: ['git:gitea:3000/o/r', 'git:gitea:2222/o/r'], refs: ['branch:main', 'default'] }],
    });
    assert.deepEqual(parsePayload('generic', { repository: 'oci://Reg:5000/team/p', ref: 'v3' }, {}), {
      pushes: [{ repositories: ['oci:reg:5000/team/p'], refs: ['tag:v3'] }],
    });
    assert.throws(() => parsePayload('generic', { ref: 'refs/heads/main' }, {}), /names no repository/);
  });
  it('a registry notification: tagged manifest pushes; blobs and pulls move nothing', () => {
    const event = (action: string, target: Record<string, unknown>) => ({ id: action, action, target: { repository: 'team/p', ...target }, request: { host: '127.0.0.1:5000' } });
    const parsed = parsePayload('registry', {
      events: [
        event('pull', { tag: 'v1', mediaType: 'application/vnd.oci.image.manifest.v1+json' }),
        event('push', { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' }),
        event('push', { tag: 'v1', mediaType: 'application/vnd.oci.image.manifest.v1+json' }),
      ],
    }, {});
    assert.deepEqual(parsed, { pushes: [{ repositories: ['oci:127.0.0.1:5000/team/p'], refs: ['tag:v1'] }] });
  });
  it('the visibility query names repositories and refs; an untagged push skips pinned sources', () => {
    assert.equal(
      pushQuery({ repositories: ['git:h/o/r'], refs: ['branch:main', 'default'] }),
      "WorkflowType = 'arenaSourceWorkflow' AND ExecutionStatus = 'Running' AND ArenaSourceRepository IN ('git:h/o/r') AND ArenaSourceRef IN ('branch:main', 'default')",
    );
    assert.match(pushQuery({ repositories: ['oci:r/p'] })!, /ArenaSourceRef NOT IN \('commit', 'digest'\)$/);
    assert.equal(pushQuery({ repositories: ["git:h/o/r'--"], refs: ['branch:main'] }), undefined);
  });
});
