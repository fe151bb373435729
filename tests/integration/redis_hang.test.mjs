// A Redis that hangs (SIGSTOP: connections stay open, nothing is answered, no TCP error ever arrives) is noticed
// within 2 s by PING; when it comes back (SIGCONT) the processes reconnect, friends get a fresh snapshot, and
// events flow again. Also measures the worst staleness a friend on another process sees.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { twoProcessesWithFriends } from '../support/redis.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Waits until `re` matches the part of `logs()` after `from` characters; returns when (performance.now()).
async function logAfter(logs, from, re, timeoutMs) {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (re.test(logs().slice(from))) return performance.now();
    await sleep(20);
  }
  throw new Error(`log never matched ${re} within ${timeoutMs} ms:\n${logs().slice(from)}`);
}

describe('a hung Redis', () => {
  let pair, redis, A, B, alice, bobSock, stopped = false;
  before(async () => {
    pair = await twoProcessesWithFriends({ env: { FC25_MEDIA_TIMEOUT_MS: '120000' } });
    ({ redis, A, B, alice, bobSock } = pair);
  });
  after(async () => {
    if (stopped) redis?.signal('SIGCONT');
    await pair?.stop();
  });

  it('is noticed within 2 s, and after it resumes friends see the truth again and events flow', async () => {
    const { body: s } = await alice.post('/api/stream/start', { client_id: 'a-tab' });
    assert.equal((await bobSock.next((m) => m.type === 'streaming_status' && m.is_streaming, 1000)).session_id,
      s.session_id);
    // Let both layers be quiet for a moment, so the hang starts on an idle connection (the slowest case).
    await sleep(300);
    const fromA = A.logs().length, fromB = B.logs().length;
    const hungAt = performance.now();
    redis.signal('SIGSTOP');
    stopped = true;
    const lostB = await logAfter(B.logs, fromB, /redis subscriber lost its connection: no answer to PING/, 4000);
    const lostA = await logAfter(A.logs, fromA, /redis subscriber lost its connection: no answer to PING/, 4000);
    const detectB = lostB - hungAt, detectA = lostA - hungAt;
    assert.ok(detectB < 2000, `B noticed the hung Redis after ${detectB.toFixed(0)} ms`);
    assert.ok(detectA < 2000, `A noticed the hung Redis after ${detectA.toFixed(0)} ms`);

    // While Redis hangs, alice stops on A: the event cannot reach B.
    const stop = await alice.post('/api/stream/stop', {});
    assert.equal(stop.body.stopped, true);
    await sleep(2500);  // an outage of a few seconds
    const snapshotsBefore = bobSock.messages.filter((m) => m.type === 'snapshot').length;
    const resumedAt = performance.now();
    redis.signal('SIGCONT');
    stopped = false;
    // B reconnects and bob's page gets a fresh snapshot: alice is offline.
    const sees = await bobSock.next((m) => (m.type === 'snapshot' &&
      bobSock.messages.filter((x) => x.type === 'snapshot').indexOf(m) >= snapshotsBefore &&
      m.friends.some((f) => f.username === alice.username && !f.is_streaming)) ||
      (m.type === 'streaming_status' && m.session_id === s.session_id && !m.is_streaming), 6000);
    const stale = sees.receivedAt - resumedAt;
    console.log(`hung Redis noticed after ${detectB.toFixed(0)} ms (B) / ${detectA.toFixed(0)} ms (A); `
      + `friend on B saw offline ${stale.toFixed(0)} ms after Redis resumed (by ${sees.type})`);
    assert.ok(stale < 3500, `offline seen ${stale.toFixed(0)} ms after Redis resumed`);
    await B.waitForLog(/redis channel layer connected[\s\S]*redis subscriber lost[\s\S]*redis channel layer connected/,
      3000);

    // A message sent after the reconnect arrives.
    await alice.post('/api/stream/start', { client_id: 'a-tab-2' });
    await bobSock.next((m) => m.type === 'streaming_status' && m.is_streaming, 3000);
    await alice.post('/api/stream/stop', {});
    await bobSock.next((m) => m.type === 'streaming_status' && !m.is_streaming && m.session_id !== s.session_id, 3000);
  });

  it('logs the loss once per connection, not once per PING', async () => {
    const lines = B.logs().split('\n').filter((l) => /redis subscriber lost its connection/.test(l));
    assert.ok(lines.length >= 1 && lines.length <= 3, lines.join('\n'));
  });
});
