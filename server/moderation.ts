// Builds the moderation stack the pipeline runs: samplers, the classifier cascade on the configured
// backend, the hash and audio banks, text moderation from the policy's lexicons, OCR and VAD.
// Everything here is loaded once at start; banks and lexicons change at run time.
// Every worker thread of the stack (decoders, onnxruntime sessions, OCR, fingerprints, PDQ, VAD) is supervised;
// their crashes, restarts and call timeouts come out of the stack as one 'worker' event stream.
import type { BankEdit } from './store/types.ts';
import { fingerprintFromWire } from '../models/audio/fingerprint.ts';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AudioFingerprintBank } from '../models/audio/bank.ts';
import { FingerprintWorker } from '../models/audio/fingerprint-worker.ts';
import { GuardedBackend } from '../models/circuit-breaker.ts';
import { HashBank, HashBankSet } from '../models/hashbank/bank.ts';
import { KServeBackend } from '../models/backends/kserve/kserve-backend.ts';
import { OnnxRuntimeBackend } from '../models/backends/onnxruntime/onnxruntime-backend.ts';
import { OcrWorker } from '../models/ocr/ocr-worker.ts';
import { PdqWorker } from '../models/pdq/pdq-worker.ts';
import { SampleModerator, type FrameClassifier } from '../models/moderator.ts';
import { VadWorker } from '../models/vad/vad-worker.ts';
import { ModelRegistry } from '../models/registry.ts';
import { ModelStore } from '../models/model-store.ts';
import { CASCADE_MODELS, NsfwCascade } from '../models/nsfw-cascade.ts';
import { TextModerator } from '../models/text/moderator.ts';
import { lexiconFor, type Policy } from '../policies/index.ts';
import { SamplerPool, type SamplerPoolOptions } from '../samplers/index.ts';
import { resizeBilinearAlignCorners } from '../samplers/preprocess.ts';
import { DECISION_NICE, SafeEmitter, type WorkerEvent } from '../threads/index.ts';

/**
 * Sampled pictures per video track in the decode thread's shared ring (SamplerPoolOptions.sharedFrames):
 * no ArrayBuffer per sample on the main thread. 8 at 640x360 is 5.5 MB a track. It must exceed what
 * keeps a sample's view without copying it: the pipeline's evidence frames (newest 4) and a batch
 * waiting for the classifier (within its deadline); OCR and evidence snapshots copy.
 */
const SHARED_FRAMES = 8;

export interface ModerationStackOptions {
  /** 'onnx' (in process), 'triton' (KServe v2 gRPC) or 'none' (no classifier: hashes, text and audio only). */
  backend: 'onnx' | 'triton' | 'none';
  /** host:port of the KServe v2 server when backend = 'triton'. */
  tritonUrl?: string;
  modelCacheDir?: string;
  /** Policy whose lexicons configure text moderation. */
  policy: Policy;
  /** Folder of hash bank files (`<bank>.txt`, one hex PDQ hash per line). Missing folder = empty banks. */
  bankDir?: string;
  /** Read on-screen text (PaddleOCR). Default true. */
  ocr?: boolean;
  /** Voice activity on audio windows (silero). Default true. */
  vad?: boolean;
  samplers?: Partial<SamplerPoolOptions>;
  /** Budget from a frame's last packet to its signals (ms). Default 100. */
  budgetMs?: number;
  log?: (level: 'info' | 'warn', msg: string) => void;
}

export interface ModerationStatus {
  backend: string;
  breaker?: string;
  models: { name: string; version: string }[];
  hashBanks: { name: string; size: number }[];
  audioBank: { name: string; size: number };
  ocr: boolean;
  vad: boolean;
}

export type ModerationStackEvents = {
  /** A worker thread of the stack crashed, was restarted, or let a call time out. */
  worker: [event: WorkerEvent];
};

export class ModerationStack extends SafeEmitter<ModerationStackEvents> {
  readonly samplers: SamplerPool;
  readonly moderator: SampleModerator;
  readonly cascade: NsfwCascade | undefined;
  readonly hashBanks: HashBankSet;
  readonly audioBank: AudioFingerprintBank;
  readonly fingerprinter: FingerprintWorker;
  readonly hasher: PdqWorker;
  readonly text: TextModerator;
  readonly ocr: OcrWorker | undefined;
  readonly vad: VadWorker | undefined;
  readonly backendName: string;
  /** The last cluster bank edit applied here (server/store BankEdit seq); 0 before any. */
  bankSeq = 0;
  #closed = false;

  private constructor(parts: {
    samplers: SamplerPool;
    moderator: SampleModerator;
    cascade: NsfwCascade | undefined;
    hashBanks: HashBankSet;
    audioBank: AudioFingerprintBank;
    fingerprinter: FingerprintWorker;
    hasher: PdqWorker;
    text: TextModerator;
    ocr: ModerationStack['ocr'];
    vad: ModerationStack['vad'];
    backendName: string;
  }) {
    super();
    this.samplers = parts.samplers;
    this.moderator = parts.moderator;
    this.cascade = parts.cascade;
    this.hashBanks = parts.hashBanks;
    this.audioBank = parts.audioBank;
    this.fingerprinter = parts.fingerprinter;
    this.hasher = parts.hasher;
    this.text = parts.text;
    this.ocr = parts.ocr;
    this.vad = parts.vad;
    this.backendName = parts.backendName;
  }

  static async load(opts: ModerationStackOptions): Promise<ModerationStack> {
    const log = opts.log ?? (() => undefined);
    // Components report to the stack once it exists (a crash during loading is seen as a load failure).
    let stack: ModerationStack | undefined;
    const onWorkerEvent = (e: WorkerEvent): void => stack?.emit('worker', e);
    const budgetMs = opts.budgetMs ?? 100;
    let cascade: NsfwCascade | undefined;
    let backendName = 'none';
    if (opts.backend !== 'none') {
      const registry = ModelRegistry.load();
      const inner =
        opts.backend === 'triton'
          ? new KServeBackend({ address: opts.tritonUrl ?? '127.0.0.1:8001', registry })
          : new OnnxRuntimeBackend({
              registry,
              store: new ModelStore(opts.modelCacheDir ? { cacheDir: opts.modelCacheDir } : {}),
              onWorkerEvent,
              // the fast model answers within the budget; the deep one re-scores the uncertain few
              threadNice: { [CASCADE_MODELS.fast]: DECISION_NICE },
            });
      backendName = inner.name;
      const started = performance.now();
      // A remote backend may be down at start: the cascade still loads and its breaker answers
      // 'unavailable' until the server is back, so policies apply their fail mode.
      cascade = await NsfwCascade.load({
        preprocess: resizeBilinearAlignCorners,
        registry,
        backend: new GuardedBackend(inner, {}),
        budgetMs,
        warmUp: opts.backend === 'onnx',
      });
      log('info', `classifier cascade ready on ${backendName} in ${Math.round(performance.now() - started)} ms`);
    }

    const hashBanks = new HashBankSet();
    if (opts.bankDir) await loadBankDir(hashBanks, opts.bankDir, log);
    const audioBank = new AudioFingerprintBank({ name: 'protected_music' });
    const text = TextModerator.create({ lexicons: lexiconsOf(opts.policy) });

    const ocr = opts.ocr === false ? undefined : await loadOcr(log, onWorkerEvent);
    const vad = opts.vad === false ? undefined : await loadVad(log, onWorkerEvent);

    const classifier: FrameClassifier | undefined = cascade;
    const fingerprinter = new FingerprintWorker(audioBank.fingerprintOptions, { onWorkerEvent });
    const hasher = new PdqWorker({ onWorkerEvent });
    const moderator = new SampleModerator({
      classifier,
      hashBanks,
      audioBank,
      fingerprinter,
      hasher,
      text,
      ocr,
      vad,
      budgetMs,
    });
    const samplers = await SamplerPool.create({ sharedFrames: SHARED_FRAMES, ...opts.samplers });
    samplers.on('worker', onWorkerEvent);
    stack = new ModerationStack({
      samplers,
      moderator,
      cascade,
      hashBanks,
      audioBank,
      fingerprinter,
      hasher,
      text,
      ocr,
      vad,
      backendName,
    });
    return stack;
  }

  /** Text lexicons follow the active policy. */
  setPolicy(policy: Policy): void {
    this.text.setLexicons(lexiconsOf(policy));
  }

  status(): ModerationStatus {
    const breaker = this.cascade?.backend.breaker.stats();
    return {
      backend: this.backendName,
      ...(breaker ? { breaker: breaker.state } : {}),
      models: this.cascade ? this.cascade.models : [],
      hashBanks: this.hashBanks.names().map((name) => ({ name, size: this.hashBanks.get(name)?.size ?? 0 })),
      audioBank: { name: this.audioBank.name, size: this.audioBank.size },
      ocr: this.ocr !== undefined,
      vad: this.vad !== undefined,
    };
  }

  /**
   * Applies one of the cluster's hash bank edits (idempotent: an entry is filed under its id, so an
   * edit applied twice, as by the node that made it, leaves the bank as once). Edits come in seq order.
   */
  applyBankEdit(edit: BankEdit): void {
    if (edit.seq <= this.bankSeq) return;
    try {
      if (edit.kind === 'hashes_added') {
        const bank = this.hashBanks.bank(edit.bank);
        for (const e of edit.entries)
          bank.add({ hash: e.hash, id: e.id, category: e.category, source: e.source, meta: e.meta });
      } else if (edit.kind === 'hash_removed') {
        this.hashBanks.get(edit.bank)?.remove(edit.id);
      } else if (edit.bank === this.audioBank.name) {
        // a node with another audio bank (AUDIO_BANK_NAME) keeps its own
        if (edit.kind === 'recording_removed') this.audioBank.unregister(edit.id);
        else {
          const r = edit.recording;
          this.audioBank.registerFingerprint(r.id, fingerprintFromWire(r.fingerprint), r.durationSec, {
            category: r.category,
            source: r.source,
            title: r.title,
          });
        }
      }
    } catch (err) {
      // one edit this node cannot apply (a malformed entry) must not stop the ones after it
      console.error(`moderation: bank edit ${edit.seq} (${edit.kind} ${edit.bank}) not applied`, err);
    }
    this.bankSeq = edit.seq;
  }
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Each thread finishes the work it holds and frees its native objects before it ends (threads/
    // close), so the parts close side by side: shutdown waits for the slowest, not for the sum.
    const results = await Promise.allSettled([
      this.samplers.close(),
      (async () => {
        await this.cascade?.close();
        // the stack made the backend (a cascade closes only a backend it made itself): its worker thread
        // would otherwise keep the process alive after shutdown
        await this.cascade?.backend.close();
      })(),
      this.ocr?.close(),
      this.vad?.close(),
      this.fingerprinter.close(),
      this.hasher.close(),
    ]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

function lexiconsOf(policy: Policy): Record<string, { terms: string[] }> {
  const out: Record<string, { terms: string[] }> = {};
  for (const [category, terms] of Object.entries(lexiconFor(policy))) out[category] = { terms };
  return out;
}

async function loadBankDir(
  set: HashBankSet,
  dir: string,
  log: NonNullable<ModerationStackOptions['log']>,
): Promise<void> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.txt'));
  } catch {
    return;
  }
  for (const file of names) {
    const bank = HashBank.parse(await readFile(join(dir, file), 'utf8'), { name: file.slice(0, -4) });
    set.add(bank);
    log('info', `hash bank ${bank.name}: ${bank.size} entries`);
  }
}

/** OCR and VAD load from their model packages; one that fails to load is turned off with a warning. */
async function loadOcr(
  log: NonNullable<ModerationStackOptions['log']>,
  onWorkerEvent: (e: WorkerEvent) => void,
): Promise<OcrWorker | undefined> {
  try {
    return await OcrWorker.load({ onWorkerEvent });
  } catch (err) {
    log('warn', `ocr disabled: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

async function loadVad(
  log: NonNullable<ModerationStackOptions['log']>,
  onWorkerEvent: (e: WorkerEvent) => void,
): Promise<VadWorker | undefined> {
  try {
    return await VadWorker.load({ onWorkerEvent });
  } catch (err) {
    log('warn', `vad disabled: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}
