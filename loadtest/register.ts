// Registers the run's known content with the server through its admin API: the banked picture in
// the `known_bad` hash bank (the server hashes it with its own PDQ: POST /v1/banks/:bank/pictures)
// and the protected melody in the audio bank. Only HTTP: the tool computes no hash of its own.
import { bankedPicture, protectedAudio, wav, type SceneOptions } from './media/scenes.ts';

export interface Registration {
  pdqHex?: string;
  picture: boolean;
  audio: boolean;
  notes: string[];
}

/** Routes of the admin API for known content (server/routes/banks.ts). */
export const KNOWN_CONTENT_ROUTES = {
  picture: (bank: string) => `/v1/banks/${bank}/pictures`,
  audio: (bank: string) => `/v1/audio-banks/${bank}/recordings`,
};

/** The banked picture as a binary PPM (P6): lossless, and a format FFmpeg reads with no library here. */
export function bankedPicturePpm(o: Pick<SceneOptions, 'width' | 'height'>): Uint8Array<ArrayBuffer> {
  const head = new TextEncoder().encode(`P6\n${o.width} ${o.height}\n255\n`);
  const rgb = bankedPicture(o.width, o.height);
  const out = new Uint8Array(head.length + rgb.length);
  out.set(head);
  out.set(rgb, head.length);
  return out;
}

async function post(
  url: string,
  token: string | undefined,
  body: BodyInit,
  contentType: string,
): Promise<{ ok: boolean; status: number; text: string }> {
  try {
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': contentType, ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await r.text();
    return { ok: r.ok, status: r.status, text: r.ok ? text : text.slice(0, 200) };
  } catch (err) {
    return { ok: false, status: 0, text: (err as Error).message };
  }
}

export async function registerKnownContent(
  baseUrl: string,
  adminToken: string | undefined,
  o: SceneOptions,
  picture: boolean,
  audio: boolean,
): Promise<Registration> {
  const out: Registration = { picture: false, audio: false, notes: [] };
  if (picture) {
    const query =
      'id=loadtest-banked-picture&category=known_bad_match&source=loadtest&label=loadtest%20banked%20picture';
    const r = await post(
      `${baseUrl}${KNOWN_CONTENT_ROUTES.picture('known_bad')}?${query}`,
      adminToken,
      bankedPicturePpm(o),
      'image/x-portable-pixmap',
    );
    out.picture = r.ok;
    if (r.ok) out.pdqHex = (JSON.parse(r.text) as { hash?: string }).hash;
    else
      out.notes.push(
        `could not register the banked picture (${r.status} ${r.text}): banked_picture violations cannot be detected`,
      );
  }
  if (audio) {
    const seconds = Math.max(8, o.seconds);
    const r = await post(
      `${baseUrl}${KNOWN_CONTENT_ROUTES.audio('protected_music')}?name=loadtest-melody`,
      adminToken,
      new Uint8Array(wav(protectedAudio(seconds))),
      'audio/wav',
    );
    out.audio = r.ok;
    if (!r.ok)
      out.notes.push(
        `could not register the protected melody (${r.status} ${r.text}): protected_audio violations cannot be detected`,
      );
  }
  return out;
}
