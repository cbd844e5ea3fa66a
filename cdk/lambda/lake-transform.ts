/**
 * The data lake's Lambda (CONTRACT §9): every event of the events stream, through the ONE
 * transform `toLakeRecords` (shared with the local lake writer), into Firehose, which
 * partitions it by tenant, date and hour (its JQ computes the same keys) and writes GZIP JSON
 * lines to S3.
 *
 * - A Kinesis record holds one event or, in the KPL aggregated format, many: Lambda's event
 *   source hands the record as written (it does not deaggregate), toLakeRecords unpacks it into
 *   a line per event. So one Kinesis record can become many lines; the packing below sizes
 *   Firehose records and calls by lines and bytes, never by Kinesis records.
 * - Heartbeats and items that are no event are left out (toLakeRecords says which).
 * - Lines are packed into Firehose records of up to 500 lines / ~1 MB, JSON lines joined by
 *   "\n": Firehose bills each record rounded up to 5 KB, so one event per record would bill
 *   ~10× its size; its multi-record deaggregation splits them again before partitioning.
 * - PutRecordBatch answers per record: only the failed ones are sent again. Whatever still fails
 *   after MAX_ATTEMPTS makes the invocation throw, so the event source mapping retries the
 *   batch, bisecting it, and finally hands its position to the DLQ. Records of a retried batch
 *   that had landed already land twice: the lake's readers drop duplicates by the line's key
 *   (tenant, environment, payloadId, eventIndex).
 */
import type { KinesisStreamEvent } from 'aws-lambda';
import { toLakeRecords } from '../../control-plane/src/lake/lake-record';

/**
 * The part of Firehose's PutRecordBatch this handler uses. Structural on purpose:
 * `@aws-sdk/client-firehose` is not in this repository's node_modules; the Lambda runtime
 * provides it (esbuild leaves `@aws-sdk/*` external). Field names and shapes follow the SDK's
 * PutRecordBatchInput / PutRecordBatchOutput.
 */
export interface PutRecordBatchInput {
  DeliveryStreamName: string;
  Records: { Data: Uint8Array }[];
}
export interface PutRecordBatchOutput {
  FailedPutCount: number | undefined;
  Encrypted?: boolean;
  RequestResponses: { RecordId?: string; ErrorCode?: string; ErrorMessage?: string }[] | undefined;
}
export interface FirehoseSender {
  putRecordBatch(input: PutRecordBatchInput): Promise<PutRecordBatchOutput>;
}

/** Firehose limits: 500 records and 4 MiB a call, 1,000 KiB a record; deaggregation splits at most 500 lines a record. */
export const LIMITS = { recordsPerCall: 500, bytesPerCall: 4 * 1024 * 1024, bytesPerRecord: 1000 * 1024, linesPerRecord: 500 };
/** Attempts per PutRecordBatch (the first one included) before the invocation fails. */
export const MAX_ATTEMPTS = 4;

export interface HandlerOptions {
  deliveryStreamName: string;
  sender: FirehoseSender;
  /** Wait before attempt n (n ≥ 2); tests pass 0. */
  backoffMs?: (attempt: number) => number;
  log?: (message: string) => void;
}

export interface Outcome {
  /** Kinesis records in the batch. */
  records: number;
  /** Lake lines: one per event (an aggregated record gives several). */
  lines: number;
  /** Kinesis records that gave no line (heartbeats, records that are no event, aggregated records of none). */
  skipped: number;
  firehoseRecords: number;
  calls: number;
}

/** JSON lines packed into Firehose records; a line alone larger than a record cannot be sent. */
export function pack(lines: string[], limits = LIMITS): Buffer[] {
  const out: Buffer[] = [];
  let current: Buffer[] = [];
  let size = 0;
  const flush = () => {
    if (current.length) out.push(Buffer.concat(current));
    current = [];
    size = 0;
  };
  for (const line of lines) {
    const bytes = Buffer.from(current.length ? `\n${line}` : line, 'utf8');
    if (current.length && (size + bytes.length > limits.bytesPerRecord || current.length >= limits.linesPerRecord)) {
      flush();
      current.push(Buffer.from(line, 'utf8'));
      size = current[0].length;
    } else {
      current.push(bytes);
      size += bytes.length;
    }
    if (size > limits.bytesPerRecord) throw new Error(`a lake line of ${size} bytes is larger than a Firehose record (${limits.bytesPerRecord} bytes)`);
  }
  flush();
  return out;
}

/** Firehose records in PutRecordBatch calls of at most 500 records and 4 MiB. */
export function batches(records: Buffer[], limits = LIMITS): Buffer[][] {
  const out: Buffer[][] = [];
  let current: Buffer[] = [];
  let size = 0;
  for (const record of records) {
    if (current.length && (current.length >= limits.recordsPerCall || size + record.length > limits.bytesPerCall)) {
      out.push(current);
      current = [];
      size = 0;
    }
    current.push(record);
    size += record.length;
  }
  if (current.length) out.push(current);
  return out;
}

export function createHandler(options: HandlerOptions): (event: KinesisStreamEvent) => Promise<Outcome> {
  const backoff = options.backoffMs ?? ((attempt: number) => Math.min(2000, 100 * 2 ** (attempt - 2)) * (0.5 + Math.random() / 2));
  const log = options.log ?? ((message: string) => console.log(message));

  /** Sends one call's records; the failed ones again, up to MAX_ATTEMPTS; throws with what still failed. */
  async function send(records: Buffer[]): Promise<number> {
    let pending = records;
    let calls = 0;
    let lastErrors: string[] = [];
    for (let attempt = 1; attempt <= MAX_ATTEMPTS && pending.length; attempt++) {
      if (attempt > 1) await sleep(backoff(attempt));
      calls++;
      let output: PutRecordBatchOutput;
      try {
        output = await options.sender.putRecordBatch({ DeliveryStreamName: options.deliveryStreamName, Records: pending.map((Data) => ({ Data })) });
      } catch (error) {
        // The whole call failed (throttled, unavailable): every record is still pending.
        lastErrors = [(error as Error).name || (error as Error).message];
        continue;
      }
      if (!output.FailedPutCount) return calls;
      const responses = output.RequestResponses ?? [];
      const failed = pending.filter((_, i) => responses[i]?.ErrorCode !== undefined || responses[i] === undefined);
      lastErrors = [...new Set(responses.map((r) => r?.ErrorCode).filter((code): code is string => !!code))];
      log(`PutRecordBatch: ${failed.length} of ${pending.length} records failed (${lastErrors.join(', ')}); attempt ${attempt} of ${MAX_ATTEMPTS}`);
      pending = failed;
    }
    if (pending.length) {
      throw new Error(`${pending.length} of ${records.length} Firehose records still failed after ${MAX_ATTEMPTS} attempts (${lastErrors.join(', ')})`);
    }
    return calls;
  }

  return async (event: KinesisStreamEvent): Promise<Outcome> => {
    const lines: string[] = [];
    let skipped = 0;
    for (const record of event.Records) {
      const lakes = toLakeRecords(Buffer.from(record.kinesis.data, 'base64'));
      for (const lake of lakes) lines.push(lake.line);
      if (!lakes.length) skipped++;
    }
    const records = pack(lines);
    let calls = 0;
    for (const batch of batches(records)) calls += await send(batch);
    const outcome = { records: event.Records.length, lines: lines.length, skipped, firehoseRecords: records.length, calls };
    log(JSON.stringify(outcome));
    return outcome;
  };
}

const sleep = (ms: number) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());

/** The runtime's Firehose client, loaded on first use (provided by the Lambda Node.js runtime). */
function sdkSender(): FirehoseSender {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sdk = require('@aws-sdk/client-firehose');
  const client = new sdk.FirehoseClient({ maxAttempts: 3 });
  return { putRecordBatch: (input) => client.send(new sdk.PutRecordBatchCommand(input)) };
}

let lambdaHandler: ((event: KinesisStreamEvent) => Promise<Outcome>) | undefined;

/** The Lambda entry point: DELIVERY_STREAM_NAME is set by the stack. */
export const handler = async (event: KinesisStreamEvent): Promise<Outcome> => {
  const deliveryStreamName = process.env.DELIVERY_STREAM_NAME;
  if (!deliveryStreamName) throw new Error('DELIVERY_STREAM_NAME is not set');
  lambdaHandler ??= createHandler({ deliveryStreamName, sender: sdkSender() });
  return lambdaHandler(event);
};
