// Converts TF.js models (Keras LayersModel and TF GraphModel JSON + weights) to ONNX opset 13.
// Covers the layer/op set of nsfwjs's three models; anything else fails loudly with
// MOD_ERR_CONVERSION rather than producing a silently different network.
//
// Layout: TF.js is NHWC, ONNX's Conv/Pool are NCHW. The graph transposes the NHWC input once,
// runs NCHW throughout and transposes back before Flatten (whose element order is NHWC in Keras).
import { ModelError } from '../errors.ts';
import { OnnxGraphBuilder } from './onnx-graph-builder.ts';

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { min?: number; scale?: number; dtype: string };
}

export interface TfjsModelJson {
  format?: string;
  modelTopology: unknown;
  weightsManifest: { paths: string[]; weights: WeightSpec[] }[];
}

export interface Weight {
  shape: number[];
  data: Float32Array;
}

export interface ConvertedModel {
  onnx: Uint8Array;
  inputName: string;
  outputName: string;
  /** Input shape without the batch dimension (NHWC). */
  inputShape: [number, number, number];
  outputSize: number;
}

const INPUT = 'input';
const OUTPUT = 'probabilities';

/** Dequantizes the concatenated weight bytes the way tfjs-core's io does (q * scale + min, in float64). */
export function decodeWeights(specs: WeightSpec[], bytes: Uint8Array): Map<string, Weight> {
  const out = new Map<string, Weight>();
  let offset = 0;
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (s.dtype !== 'float32')
      throw new ModelError('MOD_ERR_CONVERSION', `weight ${s.name}: dtype ${s.dtype} unsupported`);
    const q = s.quantization;
    let data: Float32Array;
    if (!q) {
      data = new Float32Array(bytes.slice(offset, offset + n * 4).buffer);
      offset += n * 4;
    } else if (q.dtype === 'uint8') {
      const scale = q.scale ?? 1;
      const min = q.min ?? 0;
      data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = bytes[offset + i]! * scale + min;
      offset += n;
    } else {
      throw new ModelError('MOD_ERR_CONVERSION', `weight ${s.name}: quantization ${q.dtype} unsupported`);
    }
    out.set(s.name, { shape: s.shape, data });
  }
  if (offset !== bytes.length) {
    throw new ModelError('MOD_ERR_CONVERSION', `weights: consumed ${offset} of ${bytes.length} bytes`);
  }
  return out;
}

// ---- shared NCHW helpers -------------------------------------------------------------------

/** HWIO conv kernel -> ONNX OIHW. */
function convKernel(w: Weight): { dims: number[]; data: Float32Array } {
  const [kh, kw, ci, co] = w.shape as [number, number, number, number];
  const out = new Float32Array(w.data.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < ci; i++)
        for (let o = 0; o < co; o++) out[((o * ci + i) * kh + y) * kw + x] = w.data[((y * kw + x) * ci + i) * co + o]!;
  return { dims: [co, ci, kh, kw], data: out };
}

/** Depthwise kernel [kh, kw, C, M] -> ONNX [C*M, 1, kh, kw] (output channel c*M+m, as TF orders it). */
function depthwiseKernel(w: Weight): { dims: number[]; data: Float32Array; channels: number } {
  const [kh, kw, c, m] = w.shape as [number, number, number, number];
  const out = new Float32Array(w.data.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < c; i++)
        for (let j = 0; j < m; j++) out[((i * m + j) * kh + y) * kw + x] = w.data[((y * kw + x) * c + i) * m + j]!;
  return { dims: [c * m, 1, kh, kw], data: out, channels: c };
}

/** TF 'same' padding: [top, left, bottom, right] and the output size. */
function samePads(inH: number, inW: number, k: [number, number], s: [number, number], d: [number, number]) {
  const one = (n: number, kk: number, ss: number, dd: number) => {
    const outN = Math.ceil(n / ss);
    const eff = (kk - 1) * dd + 1;
    const total = Math.max((outN - 1) * ss + eff - n, 0);
    return { begin: Math.floor(total / 2), end: total - Math.floor(total / 2), out: outN };
  };
  const h = one(inH, k[0], s[0], d[0]);
  const w = one(inW, k[1], s[1], d[1]);
  return { pads: [h.begin, w.begin, h.end, w.end], outH: h.out, outW: w.out };
}

function validOut(n: number, k: number, s: number, d: number): number {
  return Math.floor((n - ((k - 1) * d + 1)) / s) + 1;
}

/** An NCHW activation whose spatial size is known statically. */
interface Act {
  name: string;
  /** [C, H, W] for 4-D tensors, [F] for 2-D ones. */
  shape: number[];
}

class Emitter {
  constructor(readonly g: OnnxGraphBuilder) {}

  conv(
    x: Act,
    hint: string,
    w: Weight,
    bias: Float32Array | null,
    strides: [number, number],
    padding: string,
    dilations: [number, number],
    depthwise: boolean,
  ): Act {
    const [, h, wd] = x.shape as [number, number, number];
    const k = depthwise ? depthwiseKernel(w) : { ...convKernel(w), channels: 1 };
    const kh = w.shape[0]!;
    const kw = w.shape[1]!;
    const kernel = this.g.float(`${hint}/W`, k.dims, k.data);
    const outC = k.dims[0]!;
    const inputs = [x.name, kernel];
    if (bias) inputs.push(this.g.float(`${hint}/B`, [outC], bias));
    let pads = [0, 0, 0, 0];
    let outH: number;
    let outW: number;
    if (padding.toLowerCase() === 'same') {
      const p = samePads(h, wd, [kh, kw], strides, dilations);
      pads = p.pads;
      outH = p.outH;
      outW = p.outW;
    } else {
      outH = validOut(h, kh, strides[0], dilations[0]);
      outW = validOut(wd, kw, strides[1], dilations[1]);
    }
    const attrs: Record<string, number[] | number> = { kernel_shape: [kh, kw], strides, pads, dilations };
    if (depthwise) attrs.group = k.channels;
    return { name: this.g.op('Conv', inputs, attrs, hint), shape: [outC, outH, outW] };
  }

  pool(
    x: Act,
    hint: string,
    kind: 'AveragePool' | 'MaxPool',
    k: [number, number],
    s: [number, number],
    padding: string,
  ): Act {
    const [c, h, w] = x.shape as [number, number, number];
    let pads = [0, 0, 0, 0];
    let outH = validOut(h, k[0], s[0], 1);
    let outW = validOut(w, k[1], s[1], 1);
    if (padding.toLowerCase() === 'same') {
      const p = samePads(h, w, k, s, [1, 1]);
      pads = p.pads;
      outH = p.outH;
      outW = p.outW;
    }
    // TF excludes padded cells from averages; count_include_pad=0 is ONNX's default.
    const name = this.g.op(kind, [x.name], { kernel_shape: k, strides: s, pads }, hint);
    return { name, shape: [c, outH, outW] };
  }

  batchNorm(
    x: Act,
    hint: string,
    gamma: Float32Array,
    beta: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    eps: number,
  ): Act {
    const c = x.shape[0]!;
    const ins = [
      x.name,
      this.g.float(`${hint}/scale`, [c], gamma),
      this.g.float(`${hint}/B`, [c], beta),
      this.g.float(`${hint}/mean`, [c], mean),
      this.g.float(`${hint}/var`, [c], variance),
    ];
    return { name: this.g.op('BatchNormalization', ins, { epsilon: { float: eps } }, hint), shape: x.shape };
  }

  activation(x: Act, hint: string, kind: string): Act {
    switch (kind) {
      case 'linear':
        return x;
      case 'relu':
        return { name: this.g.op('Relu', [x.name], {}, hint), shape: x.shape };
      case 'relu6':
        return this.clip(x, hint, 0, 6);
      case 'sigmoid':
        return { name: this.g.op('Sigmoid', [x.name], {}, hint), shape: x.shape };
      case 'tanh':
        return { name: this.g.op('Tanh', [x.name], {}, hint), shape: x.shape };
      case 'softmax':
        // Keras/TF softmax runs over the last axis; only 2-D tensors reach it here.
        if (x.shape.length !== 1) throw new ModelError('MOD_ERR_CONVERSION', `${hint}: softmax on a 4-D tensor`);
        return { name: this.g.op('Softmax', [x.name], { axis: -1 }, hint), shape: x.shape };
      default:
        throw new ModelError('MOD_ERR_CONVERSION', `${hint}: activation ${kind} unsupported`);
    }
  }

  clip(x: Act, hint: string, min: number, max: number): Act {
    const lo = this.g.float(`${hint}/min`, [], new Float32Array([min]));
    const hi = this.g.float(`${hint}/max`, [], new Float32Array([max]));
    return { name: this.g.op('Clip', [x.name, lo, hi], {}, hint), shape: x.shape };
  }

  dense(x: Act, hint: string, kernel: Weight, bias: Float32Array | null): Act {
    const [inF, units] = kernel.shape as [number, number];
    if (x.shape.length !== 1 || x.shape[0] !== inF) {
      throw new ModelError('MOD_ERR_CONVERSION', `${hint}: dense input ${x.shape} != ${inF}`);
    }
    let y = this.g.op('MatMul', [x.name, this.g.float(`${hint}/W`, [inF, units], kernel.data)], {}, hint);
    if (bias) y = this.g.op('Add', [y, this.g.float(`${hint}/B`, [units], bias)], {}, `${hint}/bias`);
    return { name: y, shape: [units] };
  }

  /** NCHW -> NHWC, then [N, H*W*C]. */
  flatten(x: Act, hint: string): Act {
    if (x.shape.length === 1) return x;
    const t = this.g.op('Transpose', [x.name], { perm: [0, 2, 3, 1] }, `${hint}/nhwc`);
    const size = x.shape.reduce((a, b) => a * b, 1);
    return { name: this.g.op('Flatten', [t], { axis: 1 }, hint), shape: [size] };
  }
}

function pair(v: unknown, what: string): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((n) => typeof n === 'number'))
    return [v[0] as number, v[1] as number];
  throw new ModelError('MOD_ERR_CONVERSION', `${what}: expected a pair, got ${JSON.stringify(v)}`);
}

function start(g: OnnxGraphBuilder, h: number, w: number, c: number): Act {
  g.addInput(INPUT, { dims: [null, h, w, c] });
  return { name: g.op('Transpose', [INPUT], { perm: [0, 3, 1, 2] }, 'input_nchw'), shape: [c, h, w] };
}

function finish(g: OnnxGraphBuilder, x: Act, doc: string, inputShape: [number, number, number]): ConvertedModel {
  if (x.shape.length !== 1) throw new ModelError('MOD_ERR_CONVERSION', `output is not 2-D: ${x.shape}`);
  g.op('Identity', [x.name], {}, OUTPUT);
  g.addOutput(OUTPUT, { dims: [null, x.shape[0]!] });
  return { onnx: g.build('converted', doc), inputName: INPUT, outputName: OUTPUT, inputShape, outputSize: x.shape[0]! };
}

// ---- Keras LayersModel ---------------------------------------------------------------------

interface KerasLayer {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound_nodes: [string, number, number, unknown][][];
}

export function convertLayersModel(json: TfjsModelJson, weights: Map<string, Weight>): ConvertedModel {
  const topo = json.modelTopology as {
    model_config?: { class_name: string; config: { layers: KerasLayer[]; output_layers: [string, number, number][] } };
  };
  const mc = topo.model_config;
  if (!mc || (mc.class_name !== 'Model' && mc.class_name !== 'Functional')) {
    throw new ModelError('MOD_ERR_CONVERSION', 'not a Keras functional model');
  }
  const g = new OnnxGraphBuilder();
  const e = new Emitter(g);
  const acts = new Map<string, Act>();
  const w = (layer: string, key: string): Weight => {
    const found = weights.get(`${layer}/${key}`);
    if (!found) throw new ModelError('MOD_ERR_CONVERSION', `missing weight ${layer}/${key}`);
    return found;
  };
  let inputShape: [number, number, number] | null = null;

  for (const layer of mc.config.layers) {
    const cfg = layer.config;
    const ins = (layer.inbound_nodes[0] ?? []).map(([n]) => {
      const a = acts.get(n);
      if (!a) throw new ModelError('MOD_ERR_CONVERSION', `${layer.name}: input ${n} not yet defined`);
      return a;
    });
    const x = ins[0]!;
    const actName = (cfg.activation as string | undefined) ?? 'linear';
    let y: Act;
    switch (layer.class_name) {
      case 'InputLayer': {
        const s = cfg.batch_input_shape as [null, number, number, number];
        inputShape = [s[1], s[2], s[3]];
        y = start(g, s[1], s[2], s[3]);
        break;
      }
      case 'ZeroPadding2D': {
        const p = cfg.padding as [[number, number], [number, number]];
        const pads = g.int64(`${layer.name}/pads`, [0, 0, p[0][0], p[1][0], 0, 0, p[0][1], p[1][1]]);
        const [c, h, wd] = x.shape as [number, number, number];
        y = {
          name: g.op('Pad', [x.name, pads], { mode: 'constant' }, layer.name),
          shape: [c, h + p[0][0] + p[0][1], wd + p[1][0] + p[1][1]],
        };
        break;
      }
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        const dw = layer.class_name === 'DepthwiseConv2D';
        if (cfg.data_format !== 'channels_last')
          throw new ModelError('MOD_ERR_CONVERSION', `${layer.name}: data_format`);
        const kernel = w(layer.name, dw ? 'depthwise_kernel' : 'kernel');
        const bias = cfg.use_bias ? w(layer.name, 'bias').data : null;
        y = e.conv(
          x,
          layer.name,
          kernel,
          bias,
          pair(cfg.strides, layer.name),
          cfg.padding as string,
          pair(cfg.dilation_rate ?? 1, layer.name),
          dw,
        );
        y = e.activation(y, `${layer.name}/act`, actName);
        break;
      }
      case 'BatchNormalization': {
        const c = x.shape[0]!;
        const axis = cfg.axis as number | number[];
        if (!(axis === -1 || axis === 3 || (Array.isArray(axis) && (axis[0] === -1 || axis[0] === 3)))) {
          throw new ModelError('MOD_ERR_CONVERSION', `${layer.name}: batchnorm axis ${JSON.stringify(axis)}`);
        }
        const gamma = cfg.scale === false ? new Float32Array(c).fill(1) : w(layer.name, 'gamma').data;
        const beta = cfg.center === false ? new Float32Array(c) : w(layer.name, 'beta').data;
        y = e.batchNorm(
          x,
          layer.name,
          gamma,
          beta,
          w(layer.name, 'moving_mean').data,
          w(layer.name, 'moving_variance').data,
          cfg.epsilon as number,
        );
        break;
      }
      case 'ReLU': {
        if ((cfg.negative_slope ?? 0) !== 0 || (cfg.threshold ?? 0) !== 0) {
          throw new ModelError('MOD_ERR_CONVERSION', `${layer.name}: leaky/thresholded ReLU unsupported`);
        }
        const max = cfg.max_value as number | null | undefined;
        y = max == null ? e.activation(x, layer.name, 'relu') : e.clip(x, layer.name, 0, max);
        break;
      }
      case 'Activation':
        y = e.activation(x, layer.name, actName);
        break;
      case 'Add': {
        let acc = ins[0]!.name;
        for (const other of ins.slice(1)) acc = g.op('Add', [acc, other.name], {}, layer.name);
        y = { name: acc, shape: x.shape };
        break;
      }
      case 'Concatenate': {
        const axis = cfg.axis as number;
        if (axis !== -1 && axis !== 3) throw new ModelError('MOD_ERR_CONVERSION', `${layer.name}: concat axis ${axis}`);
        const c = ins.reduce((a, b) => a + b.shape[0]!, 0);
        y = {
          name: g.op(
            'Concat',
            ins.map((a) => a.name),
            { axis: 1 },
            layer.name,
          ),
          shape: [c, x.shape[1]!, x.shape[2]!],
        };
        break;
      }
      case 'AveragePooling2D':
      case 'MaxPooling2D': {
        const k = pair(cfg.pool_size, layer.name);
        const s = cfg.strides == null ? k : pair(cfg.strides, layer.name);
        y = e.pool(
          x,
          layer.name,
          layer.class_name === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool',
          k,
          s,
          cfg.padding as string,
        );
        break;
      }
      case 'GlobalAveragePooling2D':
        y = {
          name: g.op('Flatten', [g.op('GlobalAveragePool', [x.name], {}, layer.name)], { axis: 1 }),
          shape: [x.shape[0]!],
        };
        break;
      case 'Flatten':
        y = e.flatten(x, layer.name);
        break;
      case 'Dense': {
        const bias = cfg.use_bias === false ? null : w(layer.name, 'bias').data;
        y = e.activation(e.dense(x, layer.name, w(layer.name, 'kernel'), bias), `${layer.name}/act`, actName);
        break;
      }
      case 'Dropout':
        y = x;
        break;
      default:
        throw new ModelError('MOD_ERR_CONVERSION', `layer ${layer.name}: ${layer.class_name} unsupported`);
    }
    acts.set(layer.name, y);
  }
  const outs = mc.config.output_layers;
  if (outs.length !== 1 || !inputShape) throw new ModelError('MOD_ERR_CONVERSION', 'expected one input and one output');
  return finish(g, acts.get(outs[0]![0])!, 'Keras LayersModel converted from TF.js', inputShape);
}

// ---- TF GraphModel -------------------------------------------------------------------------

interface TfNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<
    string,
    {
      list?: { i?: string[]; s?: string[] };
      s?: string;
      f?: number;
      b?: boolean;
      i?: string;
      shape?: { dim?: { size: string }[] };
    }
  >;
}

type GVal = { kind: 'act'; act: Act } | { kind: 'const'; w: Weight };

const b64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

export function convertGraphModel(json: TfjsModelJson, weights: Map<string, Weight>): ConvertedModel {
  const topo = json.modelTopology as { node?: TfNode[] };
  if (!topo.node) throw new ModelError('MOD_ERR_CONVERSION', 'not a TF graph model');
  const g = new OnnxGraphBuilder();
  const e = new Emitter(g);
  const vals = new Map<string, GVal>();
  let inputShape: [number, number, number] | null = null;
  let last: Act | null = null;
  const ref = (n: string): GVal => {
    const v = vals.get(n.split(':')[0]!.replace(/^\^/, ''));
    if (!v) throw new ModelError('MOD_ERR_CONVERSION', `graph input ${n} not yet defined`);
    return v;
  };
  const act = (n: string): Act => {
    const v = ref(n);
    if (v.kind !== 'act') throw new ModelError('MOD_ERR_CONVERSION', `${n}: expected an activation`);
    return v.act;
  };
  const constant = (n: string): Weight => {
    const v = ref(n);
    if (v.kind !== 'const') throw new ModelError('MOD_ERR_CONVERSION', `${n}: expected a constant`);
    return v.w;
  };
  const ints = (node: TfNode, key: string): number[] => (node.attr?.[key]?.list?.i ?? []).map(Number);
  const str = (node: TfNode, key: string): string => b64(node.attr?.[key]?.s ?? '');
  const fused = (node: TfNode): string[] => (node.attr?.fused_ops?.list?.s ?? []).map(b64);

  // Elementwise binary op where one side may be a constant (scalar or per-channel).
  const binary = (node: TfNode, onnxOp: string): Act => {
    const [a, b] = node.input!.map(ref) as [GVal, GVal];
    const side = (v: GVal, hint: string): string => {
      if (v.kind === 'act') return v.act.name;
      if (v.w.shape.length > 1) throw new ModelError('MOD_ERR_CONVERSION', `${node.name}: non-scalar constant operand`);
      // A per-channel vector broadcasts over NHWC's last axis; in NCHW it must be [C,1,1].
      const dims = v.w.shape.length === 0 ? [] : [v.w.shape[0]!, 1, 1];
      return g.float(hint, dims, v.w.data);
    };
    const shape = a.kind === 'act' ? a.act.shape : (b as { act: Act }).act.shape;
    return { name: g.op(onnxOp, [side(a, `${node.name}/a`), side(b, `${node.name}/b`)], {}, node.name), shape };
  };

  for (const node of topo.node) {
    let out: Act;
    switch (node.op) {
      case 'Const': {
        const w = weights.get(node.name);
        if (w) vals.set(node.name, { kind: 'const', w });
        continue;
      }
      case 'Placeholder': {
        const dims = (node.attr?.shape?.shape?.dim ?? []).map((d) => Number(d.size));
        if (dims.length !== 4)
          throw new ModelError('MOD_ERR_CONVERSION', `placeholder ${node.name}: rank ${dims.length}`);
        inputShape = [dims[1]!, dims[2]!, dims[3]!];
        out = start(g, dims[1]!, dims[2]!, dims[3]!);
        break;
      }
      case 'Mul':
        out = binary(node, 'Mul');
        break;
      case 'Sub':
        out = binary(node, 'Sub');
        break;
      case 'Add':
      case 'AddV2':
      case 'BiasAdd':
        out = binary(node, 'Add');
        break;
      case '_FusedConv2D':
      case 'FusedDepthwiseConv2dNative':
      case 'Conv2D':
      case 'DepthwiseConv2dNative': {
        if (str(node, 'data_format') !== 'NHWC' && str(node, 'data_format') !== '') {
          throw new ModelError('MOD_ERR_CONVERSION', `${node.name}: data_format`);
        }
        const ops = fused(node);
        const [xIn, kIn, bIn] = node.input!;
        const st = ints(node, 'strides');
        const dl = ints(node, 'dilations');
        const hasBias = ops.includes('BiasAdd');
        if (ops.some((o) => o !== 'BiasAdd' && o !== 'Relu' && o !== 'Relu6')) {
          throw new ModelError('MOD_ERR_CONVERSION', `${node.name}: fused ops ${ops}`);
        }
        out = e.conv(
          act(xIn!),
          node.name,
          constant(kIn!),
          hasBias ? constant(bIn!).data : null,
          [st[1] ?? 1, st[2] ?? 1],
          str(node, 'padding'),
          [dl[1] ?? 1, dl[2] ?? 1],
          node.op.includes('epthwise'),
        );
        if (ops.includes('Relu')) out = e.activation(out, `${node.name}/relu`, 'relu');
        if (ops.includes('Relu6')) out = e.activation(out, `${node.name}/relu6`, 'relu6');
        break;
      }
      case 'Relu':
        out = e.activation(act(node.input![0]!), node.name, 'relu');
        break;
      case 'Relu6':
        out = e.activation(act(node.input![0]!), node.name, 'relu6');
        break;
      case 'AvgPool':
      case 'MaxPool': {
        const k = ints(node, 'ksize');
        const s = ints(node, 'strides');
        out = e.pool(
          act(node.input![0]!),
          node.name,
          node.op === 'AvgPool' ? 'AveragePool' : 'MaxPool',
          [k[1]!, k[2]!],
          [s[1]!, s[2]!],
          str(node, 'padding'),
        );
        break;
      }
      case 'Squeeze': {
        const x = act(node.input![0]!);
        const dims = ints(node, 'squeeze_dims');
        if (x.shape.length !== 3 || dims.join() !== '1,2' || x.shape[1] !== 1 || x.shape[2] !== 1) {
          throw new ModelError('MOD_ERR_CONVERSION', `${node.name}: only spatial squeeze of 1x1 maps is supported`);
        }
        out = { name: g.op('Flatten', [x.name], { axis: 1 }, node.name), shape: [x.shape[0]!] };
        break;
      }
      case '_FusedMatMul':
      case 'MatMul': {
        if (node.attr?.transpose_a?.b || node.attr?.transpose_b?.b) {
          throw new ModelError('MOD_ERR_CONVERSION', `${node.name}: transposed MatMul`);
        }
        const ops = fused(node);
        const [xIn, kIn, bIn] = node.input!;
        out = e.dense(act(xIn!), node.name, constant(kIn!), ops.includes('BiasAdd') ? constant(bIn!).data : null);
        if (ops.includes('Relu')) out = e.activation(out, `${node.name}/relu`, 'relu');
        if (ops.some((o) => o !== 'BiasAdd' && o !== 'Relu')) {
          throw new ModelError('MOD_ERR_CONVERSION', `${node.name}: fused ops ${ops}`);
        }
        break;
      }
      case 'Softmax':
        out = e.activation(act(node.input![0]!), node.name, 'softmax');
        break;
      case 'Identity':
        out = act(node.input![0]!);
        break;
      default:
        throw new ModelError('MOD_ERR_CONVERSION', `op ${node.op} (${node.name}) unsupported`);
    }
    vals.set(node.name, { kind: 'act', act: out });
    last = out;
  }
  if (!last || !inputShape) throw new ModelError('MOD_ERR_CONVERSION', 'empty graph');
  return finish(g, last, 'TF GraphModel converted from TF.js', inputShape);
}

export function convertTfjs(json: TfjsModelJson, weightBytes: Uint8Array): ConvertedModel {
  const specs = json.weightsManifest.flatMap((g) => g.weights);
  const weights = decodeWeights(specs, weightBytes);
  return json.format === 'graph-model' ? convertGraphModel(json, weights) : convertLayersModel(json, weights);
}
