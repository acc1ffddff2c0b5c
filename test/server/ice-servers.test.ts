// ICE servers for WHIP/WHEP clients (RFC 9725 4.6): ICE_SERVERS in the config becomes one
// `Link: <uri>; rel="ice-server"` header per URI on the 201 answer, with the TURN credentials as link
// params (OBS's WHIP output reads them); none without configuration; a bad value is a clear config error.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildServer } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import { iceServerLinks } from '../../server/routes/webrtc.ts';
import { FakeSfu } from '../sfu/fake.ts';

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n';

async function linksOf(iceServers: string | undefined): Promise<{ whip: string[]; whep: string[] }> {
  const config = loadConfig({
    env: iceServers === undefined ? {} : { ICE_SERVERS: iceServers },
    overrides: {
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      authSecret: 'x'.repeat(40),
      moderation: false,
      anonymousViewers: true,
    },
  });
  const server = await buildServer(config, { sfu: new FakeSfu() });
  try {
    const token = await server.auth.sign({ role: 'publisher', streamId: 's1' });
    const post = (kind: string, auth?: string) =>
      server.app.inject({
        method: 'POST',
        url: `/${kind}/s1`,
        headers: { 'content-type': 'application/sdp', ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
        payload: SDP,
      });
    const whip = await post('whip', token);
    const whep = await post('whep');
    assert.equal(whip.statusCode, 201, whip.body);
    assert.equal(whep.statusCode, 201, whep.body);
    const list = (v: number | string | string[] | undefined) =>
      v === undefined ? [] : Array.isArray(v) ? v : [String(v)];
    return { whip: list(whip.headers.link), whep: list(whep.headers.link) };
  } finally {
    await server.close();
  }
}

describe('ICE servers in Link headers', () => {
  test('JSON with TURN credentials: one Link per URI, on WHIP and WHEP answers', async () => {
    const { whip, whep } = await linksOf(
      JSON.stringify([
        {
          urls: ['turn:turn.example.net:3478?transport=udp', 'turns:turn.example.net:5349'],
          username: 'u1',
          credential: 'p"w',
        },
        { urls: 'stun:stun.example.net' },
      ]),
    );
    const expected = [
      '<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="u1"; credential="p\\"w"; credential-type="password"',
      '<turns:turn.example.net:5349>; rel="ice-server"; username="u1"; credential="p\\"w"; credential-type="password"',
      '<stun:stun.example.net>; rel="ice-server"',
    ];
    assert.deepEqual(whip, expected);
    assert.deepEqual(whep, expected);
  });

  test('comma-separated URIs; none configured means no Link header', async () => {
    assert.deepEqual((await linksOf('stun:a.example.net:3478, stun:b.example.net')).whip, [
      '<stun:a.example.net:3478>; rel="ice-server"',
      '<stun:b.example.net>; rel="ice-server"',
    ]);
    assert.deepEqual(await linksOf(undefined), { whip: [], whep: [] });
  });

  test('a bad value is a config error that names the key', () => {
    for (const bad of [
      'http://turn.example.net',
      JSON.stringify([{ urls: 'turn:t.example.net', username: 'u' }]),
      '[{"urls":',
    ]) {
      assert.throws(
        () => loadConfig({ env: { ICE_SERVERS: bad } }),
        (e: unknown) =>
          (e as { code?: string }).code === 'SRV_ERR_CONFIG' && /iceServers|ICE_SERVERS/.test((e as Error).message),
        bad,
      );
    }
    assert.deepEqual(iceServerLinks([]), []);
  });
});
