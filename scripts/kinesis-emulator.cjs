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
const { mkdirSync } = require('node:fs');

const port = Number(process.env.FLAGSTREAM_EMULATOR_PORT || 4568);
const host = process.env.FLAGSTREAM_EMULATOR_HOST || '127.0.0.1';
const dir = process.env.FLAGSTREAM_EMULATOR_DIR;
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`FLAGSTREAM_EMULATOR_PORT must be a port number, not "${process.env.FLAGSTREAM_EMULATOR_PORT}"`);
  process.exit(2);
}
if (dir) mkdirSync(dir, { recursive: true });

// GetShardIterator's AT_TIMESTAMP: the AWS SDK for Java v1 (Flink's Kinesis source) sends
// milliseconds since the epoch, as its Kinesis model says (`unixTimestampInMillis`); the AWS
// SDKs for JavaScript send seconds. Real Kinesis takes both; kinesalite reads seconds only. A
// value past the year 5000 in seconds is taken as milliseconds.
const getShardIteratorPath = require.resolve('kinesalite/actions/getShardIterator');
const getShardIterator = require(getShardIteratorPath);
require.cache[getShardIteratorPath].exports = function getShardIteratorInSeconds(store, data, cb) {
  if (typeof data.Timestamp === 'number' && data.Timestamp > 1e11) data.Timestamp /= 1000;
  return getShardIterator(store, data, cb);
};

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
