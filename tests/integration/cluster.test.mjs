// Cluster membership through a real Redis: each node's lease (TTL 5 s, renewed every second), GET /api/cluster for
// operators, a node's load as the others see it, and a node that dies dropping out within the lease.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Client, uniqueName } from '../support/client.mjs';
import { startRedis } from '../support/redis.mjs';
import { startServer, tempDir, until } from '../support/server.mjs';

const secret = 'a-cluster-secret-of-some-length';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function cluster(server, auth = `Bearer ${secret}`) {
  const r = await fetch(`${server.url}/api/cluster`, { headers: auth ? { Authorization: auth } : {} });
  return { status: r.status, body: await r.json() };
}


describe('cluster membership in Redis', () => {
  let redis, A, B;
  before(async () => {
    redis = await startRedis();
    const env = { CHANNEL_BACKEND: 'redis', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port),
      FC25_CLUSTER_SECRET: secret };
    A = await startServer({ env, dataDir: tempDir() });
    B = await startServer({ env: { ...env, FC25_NODE_URL: 'http://10.0.0.2:8000', FC25_MEDIA_ADDRESS: '203.0.113.7' },
      dataDir: tempDir(), db: A.dbPath });
  });
  after(async () => {
    await A?.stop();
    await B?.stop();
    await redis?.stop();
  });

  it('each node lists both, itself first, with the URL the others reach it at', async () => {
    const seen = await until(async () => {
      const { body } = await cluster(A);
      return body.nodes.length === 2 ? body : null;
    }, 3000, 'A seeing two nodes');
    assert.equal(seen.mode, 'redis');
    assert.equal(seen.redis_connected, true);
    assert.equal(seen.nodes[0].node_id, seen.self);
    assert.equal(seen.nodes[0].url, A.url, 'the default node URL is where it listens');
    assert.equal(seen.nodes[1].url, 'http://10.0.0.2:8000', 'FC25_NODE_URL as given');
    assert.equal(seen.nodes[1].media_address, '203.0.113.7', 'FC25_MEDIA_ADDRESS as given');
    assert.equal(seen.nodes[0].media_address, null, 'none set: the machine\'s own addresses');
    const fromB = (await cluster(B)).body;
    assert.deepEqual(fromB.nodes.map((n) => n.node_id).sort(), seen.nodes.map((n) => n.node_id).sort());
    const health = await (await fetch(`${A.url}/api/health`)).json();
    assert.equal(health.node_id, seen.self);
    assert.equal(health.cluster_nodes, 2);
  });

  it('answers only with the cluster secret', async () => {
    const none = await cluster(A, null);
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'cluster_secret_required');
    assert.equal((await cluster(A, 'Bearer wrong-secret-wrong-secret')).status, 401);
  });

  it('a stream live on A shows in A\'s load as B sees it, within two renewals', async () => {
    const alice = new Client(A.url);
    await alice.register(uniqueName('alice'));
    await alice.post('/api/stream/start', { client_id: 'tab' });
    const aId = (await cluster(A)).body.self;
    await until(async () => {
      const a = (await cluster(B)).body.nodes.find((n) => n.node_id === aId);
      return a && a.load.live_streams === 1;
    }, 3000, 'B seeing A carry one live stream');
    await alice.post('/api/stream/stop', {});
    await until(async () => {
      const a = (await cluster(B)).body.nodes.find((n) => n.node_id === aId);
      return a && a.load.live_streams === 0;
    }, 3000, 'B seeing A carry none');
  });

  it('a node killed drops out when its lease lapses (≤ 5 s), one stopped cleanly at once', async () => {
    const C = await startServer({ env: { CHANNEL_BACKEND: 'redis', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port),
      FC25_CLUSTER_SECRET: secret }, dataDir: tempDir(), db: A.dbPath });
    const cId = (await cluster(C)).body.self;
    await until(async () => (await cluster(A)).body.nodes.some((n) => n.node_id === cId), 3000, 'A seeing C');
    await C.kill();
    const t0 = Date.now();
    await until(async () => !(await cluster(A)).body.nodes.some((n) => n.node_id === cId), 7000, 'C gone');
    const gone = Date.now() - t0;
    assert.ok(gone <= 6500, `C dropped out after ${gone} ms`);
    assert.match(A.logs(), new RegExp(`cluster: node ${cId} left`));

    const D = await startServer({ env: { CHANNEL_BACKEND: 'redis', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port),
      FC25_CLUSTER_SECRET: secret }, dataDir: tempDir(), db: A.dbPath });
    const dId = (await cluster(D)).body.self;
    await until(async () => (await cluster(A)).body.nodes.some((n) => n.node_id === dId), 3000, 'A seeing D');
    await D.stop();
    const t1 = Date.now();
    await until(async () => !(await cluster(A)).body.nodes.some((n) => n.node_id === dId), 3000, 'D gone');
    assert.ok(Date.now() - t1 < 2000, 'a clean stop gives the lease up: gone at the next read');
  });
});

describe('one process without Redis', () => {
  it('lists no cluster and answers only loopback clients when no secret is set', async () => {
    const S = await startServer();
    try {
      const { status, body } = await cluster(S, null);
      assert.equal(status, 200, 'the test talks to it over loopback');
      assert.equal(body.mode, 'single');
      assert.deepEqual(body.nodes, []);
    } finally {
      await S.stop();
    }
  });
});
