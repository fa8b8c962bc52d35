/**
 * The probe endpoints of the metrics server: /healthz is up whenever the server is,
 * /readyz goes starting → per-check results → shutting down, and a hung check is
 * reported as failed instead of hanging the probe.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Readiness } from '../../src/observability/health.js';
import { startMetricsServer } from '../../src/observability/metrics.js';

describe('/healthz and /readyz', () => {
  const readiness = new Readiness();
  let server: Awaited<ReturnType<typeof startMetricsServer>>;
  let base: string;
  const get = async (path: string) => {
    const res = await fetch(`${base}${path}`);
    return { status: res.status, body: await res.text() };
  };

  before(async () => {
    server = await startMetricsServer('127.0.0.1', 0, readiness);
    base = server.url.replace(/\/metrics$/, '');
  });
  after(() => server.close());

  it('liveness answers from the start; readiness says the process is starting', async () => {
    assert.deepEqual(await get('/healthz'), { status: 200, body: 'ok\n' });
    assert.deepEqual(await get('/readyz'), { status: 503, body: 'starting\n' });
    assert.equal((await get('/metrics')).status, 200);
    assert.equal((await get('/nothing')).status, 404);
  });

  it('ready when every check passes; a failing or hung check is named with its reason', async () => {
    let temporalUp = true;
    readiness.set({
      temporal: async () => {
        if (!temporalUp) throw new Error('connection refused');
      },
      workers: async () => undefined,
    });
    assert.deepEqual(await get('/readyz'), { status: 200, body: 'ok temporal\nok workers\n' });
    assert.equal((await get('/readyz?verbose')).status, 200);

    temporalUp = false;
    assert.deepEqual(await get('/readyz'), { status: 503, body: 'failed temporal: connection refused\nok workers\n' });

    readiness.set({ hung: () => new Promise(() => undefined) });
    const hung = await get('/readyz');
    assert.equal(hung.status, 503);
    assert.match(hung.body, /^failed hung: no answer within \d+ms\n$/);
  });

  it('once shutting down it stays unready, whatever the checks say', async () => {
    readiness.set({ fine: async () => undefined });
    readiness.stopping();
    assert.deepEqual(await get('/readyz'), { status: 503, body: 'shutting down\n' });
    readiness.set({ fine: async () => undefined });
    assert.equal((await get('/readyz')).status, 503);
    assert.equal((await get('/healthz')).status, 200);
  });
});
