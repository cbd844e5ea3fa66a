import { AwsJson1_1Protocol, JsonCodec2, JsonShapeSerializer2 } from '@aws-sdk/core/protocols';

/**
 * The AWS SDK's own JSON protocol for Kinesis (awsJson1_1), with one change: a blob (a record's
 * Data) is written as base64 by Node's native encoder instead of the SDK's byte-by-byte loop in
 * JavaScript, about five times faster. The events API sends every event through it, and that loop
 * was about a tenth of its CPU (docs/ingest.md §5). The body is the same bytes (the spec compares
 * it with the stock serializer's); everything else (signing, retries, errors) is the SDK's.
 *
 * The SDK's serializer keeps its buffer and position in fields TypeScript calls private; when they
 * are not there (another SDK version), its own writeBase64 is used, so nothing breaks, only slower.
 */
class NativeBase64JsonSerializer extends JsonShapeSerializer2 {
  protected override writeBase64(data: Uint8Array): void {
    const self = this as unknown as { json?: unknown; i?: unknown };
    if (!(self.json instanceof Uint8Array) || typeof self.i !== 'number') return super.writeBase64(data);
    const base64 = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');
    this.ensure(base64.length + 2);
    const json = self.json as Uint8Array; // ensure() may have replaced it with a larger one
    let i = self.i as number;
    json[i++] = QUOTE;
    i += Buffer.from(json.buffer, json.byteOffset, json.byteLength).write(base64, i, 'latin1');
    json[i++] = QUOTE;
    self.i = i;
  }
}

const QUOTE = 0x22;

class NativeBase64JsonCodec extends JsonCodec2 {
  override createSerializer(): JsonShapeSerializer2 {
    const serializer = new NativeBase64JsonSerializer(this.settings);
    // As JsonCodec2's own; the protocol sets the context again once the client has one.
    if (this.serdeContext) serializer.setSerdeContext(this.serdeContext);
    return serializer;
  }
}

/**
 * What KinesisClient's `protocol` option takes: the client constructs it with its own settings
 * (its error types among them), as it does its default AwsJson1_1Protocol.
 */
export class KinesisJsonProtocol extends AwsJson1_1Protocol {
  constructor(settings: ConstructorParameters<typeof AwsJson1_1Protocol>[0]) {
    // As AwsJsonRpcProtocol's own codec: timestamps by their trait, else epoch seconds; no jsonName.
    super({ ...settings, jsonCodec: new NativeBase64JsonCodec({ timestampFormat: { useTrait: true, default: 7 }, jsonName: false }) });
  }
}
