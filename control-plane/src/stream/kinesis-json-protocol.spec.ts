import { randomBytes } from 'node:crypto';
import { KinesisClient, PutRecordsCommand, PutRecordsCommandInput } from '@aws-sdk/client-kinesis';
import { JsonShapeSerializer2 } from '@aws-sdk/core/protocols';
import { KinesisJsonProtocol } from './kinesis-json-protocol';

/** The body the client would send for `input` (captured after signing; nothing leaves the process). */
async function bodyOf(client: KinesisClient, input: PutRecordsCommandInput): Promise<{ body: string; headers: Record<string, string> }> {
  const captured = new Error('captured');
  let request: { body: Uint8Array | string; headers: Record<string, string> } | undefined;
  client.middlewareStack.add(
    () => async (args) => {
      request = args.request as typeof request;
      throw captured;
    },
    { step: 'finalizeRequest', priority: 'low', name: 'captureBody' },
  );
  await expect(client.send(new PutRecordsCommand(input))).rejects.toBe(captured);
  client.middlewareStack.remove('captureBody');
  const body = request!.body;
  const bytes = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return { body: bytes.toString('utf8'), headers: request!.headers };
}

const clientWith = (protocol?: typeof KinesisJsonProtocol) =>
  new KinesisClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 1, ...(protocol ? { protocol } : {}) });

describe('KinesisJsonProtocol', () => {
  afterEach(() => jest.restoreAllMocks());

  it('sends the PutRecords body the stock serializer sends, byte for byte, with its own base64 encoder', async () => {
    // Every remainder of a length by 3 (base64 padding), empty data, a large record, and bytes of every value.
    const lengths = [0, 1, 2, 3, 4, 5, 16 * 1024, 16 * 1024 + 1, 300_000];
    const input: PutRecordsCommandInput = {
      StreamName: 'flagstream-events',
      Records: [
        ...lengths.map((n, i) => ({ Data: randomBytes(n), PartitionKey: `key-${i}` })),
        { Data: Uint8Array.from({ length: 256 }, (_, b) => b), PartitionKey: 'every byte', ExplicitHashKey: '12345' },
        // A view into a larger buffer: only its own bytes are sent.
        { Data: randomBytes(100).subarray(7, 57), PartitionKey: 'a view "quoted" \u00e9' },
      ],
    };
    const stock = clientWith();
    const native = clientWith(KinesisJsonProtocol);
    const expected = await bodyOf(stock, input);
    const stockEncoder = jest.spyOn(JsonShapeSerializer2.prototype as unknown as { writeBase64: (d: Uint8Array) => void }, 'writeBase64');
    const actual = await bodyOf(native, input);
    expect(actual.body).toBe(expected.body);
    expect(actual.headers['content-type']).toBe(expected.headers['content-type']);
    expect(actual.headers['x-amz-target']).toBe('Kinesis_20131202.PutRecords');
    expect(actual.headers['x-amz-content-sha256'] ?? actual.headers.authorization).toBeDefined();
    // The fast path ran: the SDK's own loop was not asked (it is, only as a fallback, when its buffer fields are gone).
    expect(stockEncoder).not.toHaveBeenCalled();
    const sent = JSON.parse(actual.body) as { Records: { Data: string }[] };
    expect(Buffer.from(sent.Records[lengths.length].Data, 'base64')).toEqual(Buffer.from(Uint8Array.from({ length: 256 }, (_, b) => b)));
    stock.destroy();
    native.destroy();
  });

  it('serializes other calls as the stock protocol does', async () => {
    const stock = clientWith();
    const native = clientWith(KinesisJsonProtocol);
    const input = { StreamName: 's', Records: [] };
    expect((await bodyOf(native, input)).body).toBe((await bodyOf(stock, input)).body);
    stock.destroy();
    native.destroy();
  });
});
