/** `serve`: the artifact server, and the push webhook receiver when it has a secret. */
import { connectClient } from '../../client.js';
import { localPaths } from '../../local/paths.js';
import { startArtifactServer } from '../../server/artifact-server.js';
import { createWebhookReceiver, startWebhookServer } from '../../webhooks/receiver.js';
import { loadWebhookSecret } from '../../webhooks/secret.js';
import { DEFAULTS, globalOptions, temporalSettingsFrom, type GlobalOptions } from '../config.js';
import { openArtifactStore, redirectPresignedFromFlags, type StoreFlags } from '../store-options.js';

export interface ServeFlags extends Partial<GlobalOptions>, StoreFlags {
  host?: string;
  port?: number;
  /** The push webhook receiver's secret; unset (or the file absent): no receiver, no Temporal connection. */
  webhookSecretFile?: string;
  /** A port of its own for the receiver (only /hooks/… there); default: the artifact port. */
  webhookPort?: number;
}

export async function serveCommand(flags: ServeFlags): Promise<void> {
  const opts = globalOptions(flags);
  const { store, where } = await openArtifactStore(flags, localPaths(opts.dataDir).artifacts);
  const redirect = redirectPresignedFromFlags(flags);
  const secret = await loadWebhookSecret(flags.webhookSecretFile);
  // The receiver needs Temporal (visibility and signals), never the Kubernetes API.
  const temporal = temporalSettingsFrom(flags);
  const client = secret ? await connectClient(temporal) : undefined;
  const receiver = client && secret ? createWebhookReceiver({ client, secret }) : undefined;
  const host = flags.host ?? DEFAULTS.artifactHost;
  const port = flags.port ?? DEFAULTS.artifactPort;
  const ownPort = flags.webhookPort !== undefined && flags.webhookPort !== port;
  const server = await startArtifactServer(store, {
    host,
    port,
    ...(redirect ? { redirectPresigned: true } : {}),
    ...(receiver && !ownPort ? { webhooks: receiver } : {}),
  });
  const hooks = receiver && ownPort ? await startWebhookServer(receiver, host, flags.webhookPort!) : undefined;
  console.log(`serving artifacts from ${where} at ${server.url}${redirect ? ' (GET redirects to presigned URLs)' : ''}`);
  if (receiver) console.log(`push webhooks at ${hooks?.url ?? server.url}/hooks/{github,gitlab,gitea,generic,registry} (Temporal ${temporal.address})`);
  else if (flags.webhookSecretFile) console.log(`push webhooks off: ${flags.webhookSecretFile} does not exist`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await Promise.all([server.close(), hooks?.close()]);
  await client?.connection.close();
}
