// The local stream: kinesalite (a Kinesis-API server on LevelDB, plain JavaScript), bound to
// 127.0.0.1 only and kept on disk. Chosen over kinesis-mock (kinesis-local), whose every put
// hashes a shard's whole record vector: it slowed from 0.34 s to 3.6 s per 500 records as a
// shard filled, and persisted by rewriting all its streams every few seconds. kinesalite's
// puts and reads are LevelDB writes and range scans, flat as a stream fills, and a record is
// in LevelDB's log before PutRecords answers, so a SIGKILL loses nothing acknowledged.
//
// Settings (environment):
//   FLAGSTREAM_EMULATOR_PORT  the port (default 4568)
//   FLAGSTREAM_EMULATOR_HOST  the address (default 127.0.0.1; say, to reach it from a container)
//   FLAGSTREAM_EMULATOR_DIR   the LevelDB directory; unset keeps everything in memory
'use strict';
const { mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const port = Number(process.env.FLAGSTREAM_EMULATOR_PORT || 4568);
const host = process.env.FLAGSTREAM_EMULATOR_HOST || '127.0.0.1';
const dir = process.env.FLAGSTREAM_EMULATOR_DIR;
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`FLAGSTREAM_EMULATOR_PORT must be a port number, not "${process.env.FLAGSTREAM_EMULATOR_PORT}"`);
  process.exit(2);
}
if (dir) mkdirSync(dir, { recursive: true });

// GetShardIterator's AT_TIMESTAMP, in two ways unlike Kinesis:
// - The AWS SDK for Java v1 (Flink's Kinesis source) sends milliseconds since the epoch, as its
//   Kinesis model says (`unixTimestampInMillis`); the JavaScript SDKs send seconds. Kinesis takes
//   both; kinesalite reads seconds only. A value past the year 5000 in seconds is milliseconds.
// - kinesalite scans the shard from its start for the first record at or after the time (slower
//   as the shard fills), and never answers when there is none yet (a new job's reader, started
//   at "now" on a quiet shard, waited for its socket timeout). Here the position is found by a
//   binary search over the shard's sequence numbers, and with no such record it is just after
//   the shard's last record (records put later arrive later), or its start when it is empty.
const db = require(require.resolve('kinesalite/db'));
const getShardIteratorPath = require.resolve('kinesalite/actions/getShardIterator');
const getShardIterator = require(getShardIteratorPath);
require.cache[getShardIteratorPath].exports = function getShardIteratorBridged(store, data, cb) {
  if (typeof data.Timestamp === 'number' && data.Timestamp > 1e11) data.Timestamp /= 1000;
  // Anything else, and every refusal (no such stream or shard, a time ahead), is kinesalite's own.
  if (data.ShardIteratorType !== 'AT_TIMESTAMP' || typeof data.Timestamp !== 'number' || data.Timestamp * 1000 > Date.now()) {
    return getShardIterator(store, data, cb);
  }
  let shardIx;
  try {
    shardIx = db.resolveShardId(data.ShardId).shardIx;
  } catch {
    return getShardIterator(store, data, cb);
  }
  store.getStream(data.StreamName, (error, stream) => {
    if (error || shardIx >= stream.Shards.length) return getShardIterator(store, data, cb);
    positionAt(store.getStreamDb(data.StreamName), stream, shardIx, data.Timestamp).then(
      (position) => {
        const { Timestamp, ...rest } = data;
        getShardIterator(store, { ...rest, ...position }, cb);
      },
      () => getShardIterator(store, data, cb),
    );
  });
};

/** The iterator position of the first record of a shard that arrived at or after `seconds`. */
async function positionAt(streamDb, stream, shardIx, seconds) {
  const prefix = db.shardIxToHex(shardIx);
  const end = db.shardIxToHex(shardIx + 1);
  const first = (options) =>
    new Promise((resolve, reject) => {
      let found;
      streamDb.createReadStream({ ...options, limit: 1 }).on('data', (item) => (found = item)).on('error', reject).on('end', () => resolve(found));
    });
  const seqOf = (item) => item.key.split('/')[1];
  const last = await first({ gt: prefix, lt: end, reverse: true });
  if (!last) return { ShardIteratorType: 'TRIM_HORIZON' };
  if (last.value.ApproximateArrivalTimestamp < seconds) return { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: seqOf(last) };
  const shardSeq = db.parseSequence(stream.Shards[shardIx].SequenceNumberRange.StartingSequenceNumber);
  // Keys order a shard's records by their sequence index, which grows with their arrival.
  const keyAt = (seqIx) => `${prefix}/${db.stringifySequence({ ...shardSeq, seqIx, seqTime: shardSeq.shardCreateTime })}`;
  let lo = Number(shardSeq.seqIx);
  let hi = Number(db.parseSequence(seqOf(last)).seqIx);
  if (shardSeq.version !== 2 || !Number.isSafeInteger(lo) || !Number.isSafeInteger(hi)) throw new Error('not a sequence to search');
  let found = last;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const item = await first({ gte: keyAt(mid), lt: end });
    if (item && item.value.ApproximateArrivalTimestamp >= seconds) {
      found = item;
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  const atLo = await first({ gte: keyAt(lo), lt: end });
  if (atLo && atLo.value.ApproximateArrivalTimestamp >= seconds) found = atLo;
  return { ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: seqOf(found) };
}

// StreamCreationTimestamp: kinesalite reports its creation time less 2 s (an offset it keeps for its
// sequence numbers), in whole seconds, so a stream seemed to begin up to 3 s before it did. The
// control plane takes a fresh stream's creation as where it begins and reads what came before from
// the data lake (CONTRACT §9): an event received on the old stream in those seconds was then
// expected on the new one and missed. The time each stream was created is kept (in the data
// directory, across restarts) and reported instead, to the millisecond, as Kinesis does.
const createdFile = dir ? join(dir, 'flagstream-stream-creation.json') : undefined;
const created = (() => {
  try {
    return createdFile ? JSON.parse(readFileSync(createdFile, 'utf8')) : {};
  } catch {
    return {};
  }
})();
const saveCreated = () => createdFile && writeFileSync(createdFile, JSON.stringify(created));
const action = (name) => {
  const path = require.resolve(`kinesalite/actions/${name}`);
  return { path, original: require(path) };
};
const createStream = action('createStream');
require.cache[createStream.path].exports = function createStreamNoted(store, data, cb) {
  const at = Date.now();
  return createStream.original(store, data, (error, result) => {
    if (!error) {
      created[data.StreamName] = at;
      saveCreated();
    }
    cb(error, result);
  });
};
const deleteStream = action('deleteStream');
require.cache[deleteStream.path].exports = function deleteStreamNoted(store, data, cb) {
  return deleteStream.original(store, data, (error, result) => {
    if (!error && created[data.StreamName] !== undefined) {
      delete created[data.StreamName];
      saveCreated();
    }
    cb(error, result);
  });
};
for (const [name, field] of [['describeStreamSummary', 'StreamDescriptionSummary'], ['describeStream', 'StreamDescription']]) {
  const described = action(name);
  require.cache[described.path].exports = function describedWithCreation(store, data, cb) {
    return described.original(store, data, (error, result) => {
      const at = created[data.StreamName];
      if (!error && at !== undefined && result && result[field]) result[field].StreamCreationTimestamp = at / 1000;
      cb(error, result);
    });
  };
}

// CBOR answers (Flink's Kinesis sink, AWS SDK for Java v2): kinesalite encodes them with
// cbor's encodeOne, which cuts the output at its 16 KiB buffer; PutRecords' answer for 500
// records is ~50 KB, so the sink read a truncated answer and its job failed. Encode whole.
const cbor = require(require.resolve('cbor', { paths: [require.resolve('kinesalite')] }));
cbor.Encoder.encodeOne = function encodeWhole(obj, options) {
  return new cbor.Encoder({ ...options, highWaterMark: 1 << 30 })._encodeAll([obj]);
};

const kinesalite = require('kinesalite');
const server = kinesalite({
  path: dir || undefined,
  // Streams are ACTIVE almost at once (AWS takes seconds; nothing here waits for that).
  createStreamMs: 50,
  deleteStreamMs: 50,
  updateStreamMs: 50,
  // Kinesalite refuses a stream past 10 shards in all by default; the tests create many streams.
  shardLimit: 10000,
});
server.on('error', (error) => {
  console.error(`the stream emulator could not listen on ${host}:${port}: ${error.message}`);
  process.exit(1);
});
server.listen(port, host, () => console.log(`[kinesis] kinesalite listening on ${host}:${port}${dir ? `, data in ${dir}` : ', in memory'}`));

// Keep-alive clients (Flink's readers) would hold close() open: end their connections too.
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
