// Registers the run's known content with the server through its admin API: the banked picture's
// PDQ hash in the `known_bad` hash bank and the protected melody in the audio bank. The hash is
// computed here with the project's PDQ (a pure function; the server is still only reached over HTTP).

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pdqHash, pdqToHex } from '../models/pdq/pdq.ts';
import { bankedPicture, protectedAudio, wav, type SceneOptions } from './media/scenes.ts';

export interface Registration {
  pdqHex?: string;
  picture: boolean;
  audio: boolean;
  notes: string[];
}

/** Routes of the admin API for known content (server/routes/admin*.ts). */
export const KNOWN_CONTENT_ROUTES = {
  hash: (bank: string) => `/v1/banks/${bank}/hashes`,
  audio: (bank: string) => `/v1/audio-banks/${bank}/recordings`,
};

export function bankedPictureHash(o: Pick<SceneOptions, 'width' | 'height'>): string {
  return pdqToHex(pdqHash({ width: o.width, height: o.height, rgb: bankedPicture(o.width, o.height) }).hash);
}

/**
 * For a server this tool starts: a bank folder (BANK_DIR) holding `known_bad.txt` with the banked
 * picture's hash, in the hash-bank text format (hex, then tab-separated key=value metadata).
 */
export async function writeBankDir(dir: string, o: Pick<SceneOptions, 'width' | 'height'>): Promise<string> {
  await mkdir(dir, { recursive: true });
  const hex = bankedPictureHash(o);
  await writeFile(join(dir, 'known_bad.txt'), `# written by the load test\n${hex}\tcategory=known_bad_match\tsource=loadtest\tid=loadtest-banked-picture\n`);
  return hex;
}

async function post(url: string, token: string | undefined, body: BodyInit, contentType: string): Promise<{ ok: boolean; status: number; text: string }> {
  try {
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': contentType, ...(token ? { authorization: `Bearer ${token}` } : {}) }, body, signal: AbortSignal.timeout(10_000) });
    return { ok: r.ok, status: r.status, text: (await r.text()).slice(0, 200) };
  } catch (err) {
    return { ok: false, status: 0, text: (err as Error).message };
  }
}

export async function registerKnownContent(baseUrl: string, adminToken: string | undefined, o: SceneOptions, picture: boolean, audio: boolean, pictureInBankDir = false): Promise<Registration> {
  const out: Registration = { picture: pictureInBankDir, audio: false, notes: [] };
  if (picture && !pictureInBankDir) {
    out.pdqHex = bankedPictureHash(o);
    const r = await post(`${baseUrl}${KNOWN_CONTENT_ROUTES.hash('known_bad')}`, adminToken, JSON.stringify({ hash: out.pdqHex, category: 'known_bad_match', source: 'loadtest', label: 'loadtest banked picture' }), 'application/json');
    out.picture = r.ok;
    if (!r.ok) out.notes.push(`could not register the banked picture's PDQ hash (${r.status} ${r.text}): banked_picture violations cannot be detected`);
  }
  if (audio) {
    const seconds = Math.max(8, o.seconds);
    const r = await post(`${baseUrl}${KNOWN_CONTENT_ROUTES.audio('protected_music')}?name=loadtest-melody`, adminToken, new Uint8Array(wav(protectedAudio(seconds))), 'audio/wav');
    out.audio = r.ok;
    if (!r.ok) out.notes.push(`could not register the protected melody (${r.status} ${r.text}): protected_audio violations cannot be detected`);
  }
  return out;
}
