// A small builder for ONNX graphs (opset 13) on top of onnx-proto's generated protobuf classes.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export const OPSET = 13;

type AttrValue = number | number[] | string | { float: number };

export interface TensorShape {
  /** null = dynamic (the batch dimension). */
  dims: (number | null)[];
}

export class OnnxGraphBuilder {
  readonly #nodes: onnxProto.onnx.INodeProto[] = [];
  readonly #initializers: onnxProto.onnx.ITensorProto[] = [];
  readonly #inputs: onnxProto.onnx.IValueInfoProto[] = [];
  readonly #outputs: onnxProto.onnx.IValueInfoProto[] = [];
  readonly #used = new Set<string>();
  #counter = 0;

  /** A fresh, unique tensor name derived from `hint`. */
  name(hint: string): string {
    let n = hint.replace(/[^A-Za-z0-9_./-]/g, '_');
    while (this.#used.has(n)) n = `${hint}__${++this.#counter}`;
    this.#used.add(n);
    return n;
  }

  addInput(name: string, shape: TensorShape): void {
    this.#used.add(name);
    this.#inputs.push(valueInfo(name, shape));
  }

  addOutput(name: string, shape: TensorShape): void {
    this.#outputs.push(valueInfo(name, shape));
  }

  /** A float32 constant (weights). Returns its tensor name. */
  float(hint: string, dims: number[], data: Float32Array): string {
    const name = this.name(hint);
    this.#initializers.push({
      name,
      dims,
      dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  int64(hint: string, values: number[]): string {
    const name = this.name(hint);
    const buf = new BigInt64Array(values.map((v) => BigInt(v)));
    this.#initializers.push({
      name,
      dims: [values.length],
      dataType: onnx.TensorProto.DataType.INT64,
      rawData: new Uint8Array(buf.buffer),
    });
    return name;
  }

  /** Adds a node with one output; returns the output's name. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, hint = opType): string {
    const out = this.name(hint);
    this.#nodes.push({
      opType,
      name: this.name(`${hint}_node`),
      input: inputs,
      output: [out],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return out;
  }

  /** The serialized ModelProto. */
  build(graphName: string, docString: string): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 7,
      producerName: 'moderating-sfu tfjs-to-onnx',
      producerVersion: '1',
      docString,
      opsetImport: [{ domain: '', version: OPSET }],
      graph: {
        name: graphName,
        node: this.#nodes,
        initializer: this.#initializers,
        input: this.#inputs,
        output: this.#outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, shape: TensorShape): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: shape.dims.map((d) => (d === null ? { dimParam: 'batch' } : { dimValue: d })) },
      },
    },
  };
}

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if (typeof v === 'object') return { name, type: T.FLOAT, f: v.float };
  return { name, type: T.INT, i: v };
}
