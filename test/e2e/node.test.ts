/**
 * The one-node cluster of test/helpers/node.ts itself: a pod runs to Ready on
 * the real kubelet and its Service answers on the ClusterIP inside the node.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { nodeSkipReason, PAUSE_IMAGE, startNode, type NodeCluster } from '../helpers/node.js';
import { waitFor } from '../helpers/wait.js';

describe('one-node cluster', { skip: nodeSkipReason() }, () => {
  let node: NodeCluster;
  before(async () => {
    node = await startNode();
    console.log(`node Ready in ${node.startupMs} ms`);
  });
  after(async () => node?.close());

  it('runs a pod to Ready and reaches its ClusterIP Service from the node', async (t) => {
    const ns = '/api/v1/namespaces/default';
    const labels = { app: 'echo' };
    const pod = await node.kube.request('POST', `${ns}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'echo', labels },
      spec: {
        containers: [
          {
            name: 'echo',
            image: PAUSE_IMAGE,
            imagePullPolicy: 'Never',
            args: ['-http', ':8080'],
            ports: [{ containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
          },
        ],
      },
    });
    assert.equal(pod.status, 201, pod.text);
    const svc = await node.kube.request('POST', `${ns}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'echo' },
      spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 }] },
    });
    assert.equal(svc.status, 201, svc.text);

    try {
      await waitFor(
        'pod echo Ready',
        async () => (await node.kube.request('GET', `${ns}/pods/echo`)).body,
        (p) => p?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'),
        120_000,
        500,
      );
    } catch (err) {
      t.diagnostic(await node.logs());
      throw err;
    }
    const clusterIP: string = svc.body.spec.clusterIP;
    // kube-proxy programs the rules once it has seen the ready endpoint: poll.
    const res = await waitFor(
      `http://${clusterIP}/ from the node`,
      () => node.fetchInNode(`http://${clusterIP}/`, 3_000),
      (r) => r.status === 200,
      60_000,
      500,
    );
    assert.equal(res.body.toString(), 'ok echo\n');
  });
});
