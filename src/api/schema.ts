/**
 * The ArenaSource API (omnia.altairalabs.ai/v1alpha1) as one TypeBox schema.
 * It is the single source of truth for: the TypeScript types (Static<>), the
 * validation at every edge (src/api/validate.ts), and the CRD's OpenAPI schema.
 * Descriptions follow the specification so that `kubectl explain` reads well.
 */
import { Kind, Type, TypeRegistry, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox';
import { GO_DURATION_PATTERN } from './duration.js';

import { API_VERSION, KIND } from './group-version.js';

export { API_GROUP, API_VERSION, KIND } from './group-version.js';

// A string enum that renders as `{type: string, enum: [...]}` (what a CRD needs),
// not TypeBox's default anyOf-of-consts. The validator is registered once here.
TypeRegistry.Set<{ enum: string[] }>('StringEnum', (schema, value) =>
  typeof value === 'string' && schema.enum.includes(value),
);
function StringEnum<T extends string[]>(values: [...T], options: Record<string, unknown> = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, [Kind]: 'StringEnum', type: 'string', enum: values });
}

const opts = <T extends TSchema>(schema: T) => Type.Optional(schema);

/**
 * CRD-only annotations (read by src/api/crd.ts, ignored by TypeBox): CEL rules
 * the API server checks, for what a structural schema cannot say.
 */
interface CelRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}
const cel = (...rules: CelRule[]) => ({ 'x-kubernetes-validations': rules });

/**
 * A CEL rule on a Go duration string (CEL's duration() is Go's time.ParseDuration).
 * The API server runs CEL even after a `pattern` failure, so the rule first
 * checks the pattern itself: otherwise "5 minutes" would also get a
 * "type conversion error" next to the pattern's message.
 */
const durationRule = (condition: string, message: string): CelRule => ({
  rule: `!self.matches(r'${GO_DURATION_PATTERN}') || (${condition})`,
  message,
});

/**
 * Each section is required with its type and forbidden with any other (as checkSpec says).
 * CEL runs even when the schema check failed, hence the guard on a missing type.
 */
const SECTION_RULES: CelRule[] = (
  [
    ['git', 'git'],
    ['oci', 'oci'],
    ['configmap', 'configMap'],
    ['workspace', 'workspace'],
  ] as const
).flatMap(([type, field]) => [
  {
    rule: `!has(self.type) || self.type != '${type}' || has(self.${field})`,
    message: `spec.${field} is required when spec.type is "${type}"`,
    fieldPath: `.${field}`,
    reason: 'FieldValueRequired' as const,
  },
  {
    rule: `!has(self.${field}) || !has(self.type) || self.type == '${type}'`,
    message: `spec.${field} must not be set when spec.type is not "${type}"`,
    fieldPath: `.${field}`,
    reason: 'FieldValueForbidden' as const,
  },
]);

export const SourceTypes = ['git', 'oci', 'configmap', 'workspace'] as const;
/** Initializing: the first fetch is running (no content yet); Fetching: a later one (the last content stays served). */
export const Phases = ['Pending', 'Initializing', 'Ready', 'Fetching', 'Error'] as const;
export const ConditionTypes = ['Ready', 'Reconciling', 'Stalled', 'Fetching', 'ArtifactAvailable', 'SourceValid', 'SourceVerified', 'BundleValid'] as const;
/** warn: an invalid bundle is published and reported (BundleValid=False); strict: it is not published. */
export const ValidationModes = ['warn', 'strict'] as const;

/**
 * A relative path that stays where it is put (targetPath, workspace.path): the same
 * rule as spec-rules.ts's contentPathProblem, for the API server.
 */
const relativePathRules = (field: string): CelRule[] => [
  { rule: "!self.startsWith('/')", message: `${field} must be relative (not start with "/")` },
  {
    rule: "!self.matches('(^|/)[.][.](/|$)')",
    message: `${field} must not contain ".."`,
  },
  { rule: "!self.contains('\\\\')", message: `${field} must be a POSIX path (no backslashes)` },
];

export const SecretRefSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, description: 'name is the name of the Secret in the same namespace.' }),
    key: opts(
      Type.String({
        description: 'key is kept for compatibility with Omnia; credentials are read from the well-known keys.',
      }),
    ),
  },
  { additionalProperties: false, description: 'secretRef references a Secret holding credentials.' },
);

const ProxySecretRefSchema = (section: string) =>
  Type.Object(SecretRefSchema.properties, {
    additionalProperties: false,
    description:
      `proxySecretRef names a Secret with the HTTP(S) proxy for this ${section} source: key address (http://host:port), ` +
      'optional keys username and password. The worker\'s own proxy environment is not used for this source then.',
  });

export const GitVerifyModes = ['HEAD', 'Tag', 'TagAndHEAD'] as const;

export const GitVerifySchema = Type.Object(
  {
    mode: opts(
      StringEnum([...GitVerifyModes], {
        default: 'HEAD',
        description:
          'mode says what must be signed: HEAD (the commit checked out), Tag (the annotated tag of spec.git.ref.tag, or the tag spec.git.ref.semver chose) ' +
          'or TagAndHEAD (both). Defaults to HEAD.',
      }),
    ),
    secretRef: Type.Object(SecretRefSchema.properties, {
      additionalProperties: false,
      description:
        'secretRef names a Secret whose keys ending in .asc hold trusted OpenPGP public keys (ASCII armored) and ' +
        'keys ending in .sshpub hold trusted SSH public keys (one authorized_keys line each).',
    }),
  },
  {
    additionalProperties: false,
    description:
      'verify requires a valid signature (OpenPGP or SSH, checked with gpg / ssh-keygen as git does) by one of the trusted keys; ' +
      'an unsigned or wrongly signed revision is never published (condition SourceVerified, reason VerificationFailed).',
  },
);

export const OciVerifySchema = Type.Object(
  {
    provider: StringEnum(['cosign'], { description: 'provider of the signatures; only cosign (key-based) is supported.' }),
    secretRef: Type.Object(SecretRefSchema.properties, {
      additionalProperties: false,
      description: 'secretRef names a Secret whose keys ending in .pub hold trusted cosign public keys (PEM).',
    }),
  },
  {
    additionalProperties: false,
    description:
      'verify requires a cosign signature (the sha256-<digest>.sig tag) of the artifact\'s manifest by one of the trusted keys; ' +
      'an unsigned or wrongly signed artifact is never published (condition SourceVerified, reason VerificationFailed).',
  },
);

export const GitRefSchema = Type.Object(
  {
    branch: opts(Type.String({ minLength: 1, description: 'branch to check out.' })),
    tag: opts(Type.String({ minLength: 1, description: 'tag to check out. Takes precedence over branch.' })),
    semver: opts(
      Type.String({
        minLength: 1,
        description:
          'semver is a semver range (e.g. ">=1.0.0 <2.0.0", "^1.2", "1.x") over the repository\'s tags: the highest ' +
          'matching tag is checked out, and the revision is "<tag>@sha1:<commit>". Takes precedence over tag and branch.',
      }),
    ),
    name: opts(
      Type.String({
        minLength: 1,
        description:
          'name is a full git reference to check out, e.g. "refs/pull/42/head" or "refs/heads/main". ' +
          'Takes precedence over semver, tag and branch.',
        ...cel({ rule: "self.startsWith('refs/')", message: 'spec.git.ref.name must be a full reference starting with "refs/"' }),
      }),
    ),
    commit: opts(
      Type.String({
        minLength: 1,
        description:
          'commit SHA (full 40 or 64 hex characters) to check out. Takes precedence over name, semver, tag and branch; ' +
          'a branch, tag or name given with it only names the revision.',
      }),
    ),
  },
  {
    additionalProperties: false,
    ...cel(
      // Two names for the commit to check out; which one was meant cannot be guessed.
      {
        rule: "[has(self.branch), has(self.tag), has(self.semver), has(self.name)].filter(x, x).size() <= 1",
        message: 'set at most one of spec.git.ref.branch, tag, semver or name (a commit may accompany branch, tag or name)',
      },
      // A range picks among tags; a commit pins one: together they contradict each other.
      { rule: '!(has(self.commit) && has(self.semver))', message: 'spec.git.ref.semver cannot be combined with spec.git.ref.commit' },
    ),
    description:
      'ref specifies the Git reference to check out, by precedence commit > name > semver > tag > branch. ' +
      'If not specified, the remote default branch.',
  },
);

export const GitSourceSchema = Type.Object(
  {
    url: Type.String({
      pattern: '^(https?|ssh)://.*$',
      description: 'url is the Git repository URL (https://, http:// or ssh://).',
    }),
    ref: opts(GitRefSchema),
    path: opts(
      Type.String({ description: 'path within the repository to the PromptKit bundle. Defaults to the root.' }),
    ),
    secretRef: opts(
      Type.Object(SecretRefSchema.properties, {
        additionalProperties: false,
        description:
          'secretRef names a Secret with credentials: username/password or bearerToken (HTTPS), identity/known_hosts (SSH), ' +
          'and for HTTPS optionally ca.crt (a private CA) and tls.crt/tls.key (a client certificate for mutual TLS).',
      }),
    ),
    proxySecretRef: opts(ProxySecretRefSchema('git')),
    verify: opts(GitVerifySchema),
  },
  {
    additionalProperties: false,
    description: 'git specifies the Git repository source. Required when type is "git".',
    // As spec-rules.ts checkGit says them.
    ...cel(
      {
        rule: "!has(self.proxySecretRef) || !self.url.startsWith('ssh://')",
        message: 'spec.git.proxySecretRef applies to https:// and http:// URLs only',
        fieldPath: '.proxySecretRef',
      },
      {
        rule: "!has(self.verify) || !has(self.verify.mode) || self.verify.mode == 'HEAD' || (has(self.ref) && (has(self.ref.tag) || has(self.ref.semver)))",
        message: 'spec.git.verify.mode Tag and TagAndHEAD verify the annotated tag of spec.git.ref.tag or spec.git.ref.semver, one of which must be set',
        fieldPath: '.verify.mode',
      },
    ),
  },
);

export const OciRefSchema = Type.Object(
  {
    tag: opts(Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$', description: 'tag to pull.' })),
    semver: opts(
      Type.String({
        minLength: 1,
        description:
          'semver is a semver range over the repository\'s tags: the highest matching tag is pulled, and the revision is "<tag>@sha256:<digest>".',
      }),
    ),
    semverFilter: opts(
      Type.String({
        minLength: 1,
        description: 'semverFilter is a regular expression the tags must match before the semver range picks among them (e.g. ".*-rc.*").',
      }),
    ),
    digest: opts(Type.String({ pattern: '^sha256:[0-9a-f]{64}$', description: 'digest of the manifest to pull (sha256:<hex>).' })),
  },
  {
    additionalProperties: false,
    ...cel(
      {
        rule: '[has(self.tag), has(self.semver), has(self.digest)].filter(x, x).size() == 1',
        message: 'set exactly one of spec.oci.ref.tag, semver or digest',
      },
      { rule: '!has(self.semverFilter) || has(self.semver)', message: 'spec.oci.ref.semverFilter needs spec.oci.ref.semver' },
    ),
    description: 'ref selects the artifact in the repository of url, which then names no tag or digest.',
  },
);

export const OciSourceSchema = Type.Object(
  {
    url: Type.String({
      pattern: '^oci://.*$',
      description:
        'url is the OCI artifact URL: oci://registry/repository:tag or oci://registry/repository@sha256:digest, ' +
        'or oci://registry/repository with spec.oci.ref.',
    }),
    ref: opts(OciRefSchema),
    secretRef: opts(SecretRefSchema),
    certSecretRef: opts(
      Type.Object(SecretRefSchema.properties, {
        additionalProperties: false,
        description:
          'certSecretRef names a Secret with TLS material for the registry: ca.crt (a private CA, added to the system roots) ' +
          'and/or tls.crt and tls.key (a client certificate for mutual TLS).',
      }),
    ),
    proxySecretRef: opts(ProxySecretRefSchema('oci')),
    verify: opts(OciVerifySchema),
    insecure: opts(
      Type.Boolean({ default: false, description: 'insecure allows plain HTTP or unverified TLS for this registry.' }),
    ),
  },
  {
    additionalProperties: false,
    ...cel({
      // A tag or digest in the URL and a ref would be two answers to one question.
      rule: "!has(self.ref) || !(self.url.contains('@') || self.url.matches('^oci://[^/]+/.*:[^/]*$'))",
      message: 'spec.oci.url must not name a tag or digest when spec.oci.ref is set (use one or the other)',
      fieldPath: '.ref',
    }),
    description: 'oci specifies the OCI registry source. Required when type is "oci".',
  },
);

export const ConfigMapSourceSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, description: 'name is the name of the ConfigMap in the same namespace.' }),
    key: opts(
      Type.String({ minLength: 1, default: 'pack.json', description: 'key holding the bundle. Defaults to "pack.json".' }),
    ),
  },
  {
    additionalProperties: false,
    description: 'configMap specifies the ConfigMap source. Required when type is "configmap".',
  },
);

export const WorkspaceSourceSchema = Type.Object(
  {
    path: Type.String({
      minLength: 1,
      description:
        'path is the directory to snapshot, relative to the workspace content root of this namespace ' +
        '({content root}/{workspace}/{namespace}), e.g. "arena/projects/my-project". Absolute paths and ".." are rejected.',
      ...cel(...relativePathRules('spec.workspace.path')),
    }),
  },
  {
    additionalProperties: false,
    description:
      'workspace specifies an existing directory on the workspace content volume to snapshot. Required when type is "workspace".',
  },
);

export const ArenaSourceSpecSchema = Type.Object(
  {
    type: StringEnum([...SourceTypes], { description: 'type specifies the source type.' }),
    interval: Type.String({
      pattern: GO_DURATION_PATTERN,
      description: 'interval is the reconciliation interval for polling the source, a Go duration (e.g. 5m, 1h, 5m30s).',
      // Bounds as in spec-rules.ts (MIN_INTERVAL_MS).
      ...cel(durationRule("duration(self) >= duration('1s')", 'spec.interval must be at least 1s')),
    }),
    git: opts(GitSourceSchema),
    oci: opts(OciSourceSchema),
    configMap: opts(ConfigMapSourceSchema),
    workspace: opts(WorkspaceSourceSchema),
    ignore: opts(
      Type.String({
        description:
          'ignore holds gitignore-style patterns (one a line, as Flux\'s spec.ignore) of files to leave out of the artifact, ' +
          'relative to the bundle root. Added after the patterns of the source\'s .sourceignore files, so they win.',
      }),
    ),
    targetPath: opts(
      Type.String({
        description:
          'targetPath is where versions of the content are written on the workspace content volume, relative to ' +
          '{content root}/{workspace}/{namespace}. Defaults to "arena/{source name}". Absolute paths and ".." are rejected.',
        ...cel(...relativePathRules('spec.targetPath')),
      }),
    ),
    createVersionOnSync: opts(
      Type.Boolean({
        default: true,
        description:
          'createVersionOnSync keeps a history of content versions (the newest --content-keep) when true; when false, ' +
          'only the current version is kept (a replaced one is removed once no reader can still be using it).',
      }),
    ),
    suspend: opts(Type.Boolean({ default: false, description: 'suspend stops reconciliation while true.' })),
    validation: opts(
      StringEnum([...ValidationModes], {
        default: 'warn',
        description:
          'validation says what an invalid bundle does (pack.json and *.pack.json against the PromptPack schema v1.4.0, ' +
          'config.arena.yaml references present in the bundle; reported in the BundleValid condition). ' +
          '"warn" (default): it is published and reported. "strict": it is not published (phase Error, reason InvalidBundle), ' +
          'the last good artifact stays served, and the revision is not fetched again until it changes.',
      }),
    ),
    timeout: opts(
      Type.String({
        pattern: GO_DURATION_PATTERN,
        default: '60s',
        description: 'timeout for fetch operations, a Go duration. Defaults to 60s.',
        // Bounds as in spec-rules.ts (positive, MAX_TIMEOUT_MS).
        ...cel(
          durationRule(
            "duration(self) > duration('0s') && duration(self) <= duration('1h')",
            'spec.timeout must be more than 0s and at most 1h',
          ),
        ),
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'spec defines the desired state of ArenaSource.',
    ...cel(...SECTION_RULES),
  },
);

const DateTime = (description: string) => Type.String({ format: 'date-time', description });

export const ArtifactSchema = Type.Object(
  {
    revision: Type.String({ description: 'revision is the source revision identifier.' }),
    url: Type.String({ description: 'url is where Arena workers download the bundle.' }),
    checksum: opts(Type.String({ description: 'checksum is the SHA256 checksum of the artifact (sha256:<hex>).' })),
    size: opts(Type.Integer({ format: 'int64', description: 'size is the size of the artifact in bytes.' })),
    lastUpdateTime: DateTime('lastUpdateTime is when the artifact was last updated.'),
    contentPath: opts(
      Type.String({
        description:
          'contentPath is the directory holding this artifact\'s files on the workspace content volume, relative to ' +
          '{content root}/{workspace}/{namespace}: {targetPath}/.arena/versions/{version}. Set when workers have a content root.',
      }),
    ),
    version: opts(
      Type.String({
        description: 'version is the content-addressed version: the first 12 hex digits of the artifact\'s SHA256.',
      }),
    ),
  },
  { description: 'artifact is the last successfully fetched artifact.' },
);

export const ConditionSchema = Type.Object(
  {
    type: Type.String({
      maxLength: 316,
      description: 'type of condition: Ready, Reconciling, Stalled, Fetching, ArtifactAvailable, SourceValid or BundleValid.',
    }),
    status: StringEnum(['True', 'False', 'Unknown'], { description: 'status of the condition: True, False or Unknown.' }),
    observedGeneration: opts(
      Type.Integer({
        format: 'int64',
        minimum: 0,
        description: 'observedGeneration is the .metadata.generation the condition was set for.',
      }),
    ),
    lastTransitionTime: DateTime('lastTransitionTime is when the condition last changed status.'),
    reason: Type.String({
      minLength: 1,
      maxLength: 1024,
      pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
      description: 'reason is a CamelCase identifier for the last transition.',
    }),
    message: Type.String({ maxLength: 32768, description: 'message is a human-readable explanation.' }),
  },
  { description: 'Condition is one aspect of the current state of the ArenaSource.' },
);

export const ArenaSourceStatusSchema = Type.Object(
  {
    phase: opts(StringEnum([...Phases], { description: 'phase is the lifecycle phase.' })),
    artifact: opts(ArtifactSchema),
    conditions: opts(
      Type.Array(ConditionSchema, {
        description:
          'conditions are Ready, Reconciling (present while a cycle has work or retries), Stalled (present while only a spec change can help), Fetching, ArtifactAvailable, SourceValid, SourceVerified (with spec.*.verify) and BundleValid, one of each at most.',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['type'],
      }),
    ),
    lastFetchTime: opts(DateTime('lastFetchTime is the time of the last fetch attempt.')),
    nextFetchTime: opts(DateTime('nextFetchTime is the scheduled time of the next fetch (after a failure, of the backoff retry).')),
    observedGeneration: opts(
      Type.Integer({ format: 'int64', description: 'observedGeneration is the last .metadata.generation reconciled to the end (Ready, stalled or suspended).' }),
    ),
    lastHandledReconcileAt: opts(
      Type.String({
        description:
          'lastHandledReconcileAt echoes the last handled reconcile-requested-at (or Omnia\'s reconcile-at) annotation.',
      }),
    ),
    headVersion: opts(Type.String({ description: 'headVersion is the version .arena/HEAD names (moved atomically after a sync).' })),
    versionCount: opts(Type.Integer({ description: 'versionCount is the number of content versions currently stored.' })),
    lastSyncRevision: opts(Type.String({ description: 'lastSyncRevision is the source revision last synced to the content volume.' })),
    lastVersionCreated: opts(Type.String({ description: 'lastVersionCreated is the version written by the last sync that created one.' })),
  },
  { description: 'status defines the observed state of ArenaSource.' },
);

export const ObjectMetaSchema = Type.Object({
  name: Type.String({
    minLength: 1,
    maxLength: 253,
    pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
  }),
  namespace: opts(Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' })),
  generation: opts(Type.Integer()),
  resourceVersion: opts(Type.String()),
  uid: opts(Type.String()),
  creationTimestamp: opts(Type.String()),
  labels: opts(Type.Record(Type.String(), Type.String())),
  annotations: opts(Type.Record(Type.String(), Type.String())),
});

export const ArenaSourceSchema = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal(KIND),
    metadata: ObjectMetaSchema,
    spec: ArenaSourceSpecSchema,
    status: opts(ArenaSourceStatusSchema),
  },
  {
    description:
      'ArenaSource defines a source for fetching PromptKit bundles (PromptPacks) from a Git repository, ' +
      'an OCI registry, a ConfigMap or a directory of the workspace content volume, and reports the last fetched artifact in its status.',
  },
);

export type SourceType = (typeof SourceTypes)[number];
export type ValidationMode = (typeof ValidationModes)[number];
export type Phase = (typeof Phases)[number];
export type ConditionType = (typeof ConditionTypes)[number];
export type SecretRef = Static<typeof SecretRefSchema>;
export type GitRef = Static<typeof GitRefSchema>;
export type GitVerify = Static<typeof GitVerifySchema>;
export type OciVerify = Static<typeof OciVerifySchema>;
export type GitSource = Static<typeof GitSourceSchema>;
export type OciRef = Static<typeof OciRefSchema>;
export type OciSource = Static<typeof OciSourceSchema>;
export type ConfigMapSource = Static<typeof ConfigMapSourceSchema>;
export type WorkspaceSource = Static<typeof WorkspaceSourceSchema>;
export type ArenaSourceSpec = Static<typeof ArenaSourceSpecSchema>;
export type Artifact = Static<typeof ArtifactSchema>;
export type Condition = Static<typeof ConditionSchema>;
export type ArenaSourceStatus = Static<typeof ArenaSourceStatusSchema>;
export type ObjectMeta = Static<typeof ObjectMetaSchema>;
export type ArenaSource = Static<typeof ArenaSourceSchema>;
