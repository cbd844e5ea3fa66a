// Starts the stream emulator (kinesis-local, a Scala.js build of kinesis-mock) bound to
// 127.0.0.1 only. It hard-codes the host 0.0.0.0 and, for a wildcard host, calls
// `server.listen(port, cb)`, which listens on every interface; so before loading it,
// net.Server.prototype.listen (which tls.Server and http servers inherit: the plain and
// the TLS port alike) is made to bind a wildcard or missing host to 127.0.0.1.
// FLAGSTREAM_EMULATOR_HOST overrides the address (say, to reach it from a container).
'use strict';
const net = require('node:net');
const path = require('node:path');

const HOST = process.env.FLAGSTREAM_EMULATOR_HOST || '127.0.0.1';
const WILDCARDS = new Set([undefined, null, '', '0.0.0.0', '::', '::0', '0:0:0:0:0:0:0:0']);
const isPort = (value) => typeof value === 'number' || (typeof value === 'string' && /^\d+$/.test(value));

/** The arguments of a listen() call, with a wildcard or missing host replaced by HOST; pipes and handles as they are. */
function loopbackArgs(args) {
  const [first] = args;
  if (first !== null && typeof first === 'object') {
    // listen(options[, cb]): a port (or none) without a path, fd or handle means a TCP port.
    const isTcp = first.path === undefined && first.fd === undefined && first.handle === undefined && first._handle === undefined;
    return isTcp && WILDCARDS.has(first.host) ? [{ ...first, host: HOST }, ...args.slice(1)] : args;
  }
  if (first === undefined || typeof first === 'function') {
    // listen([cb]): a random port on every interface.
    return [0, HOST, ...args.slice(first === undefined && args.length > 0 ? 1 : 0)];
  }
  if (isPort(first)) {
    // listen(port[, host][, backlog][, cb])
    if (typeof args[1] === 'string') return WILDCARDS.has(args[1]) ? [first, HOST, ...args.slice(2)] : args;
    return [first, HOST, ...args.slice(1)];
  }
  return args; // listen(path, ...): a pipe or Unix socket
}

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function loopbackListen(...args) {
  const bound = loopbackArgs(args);
  this.once('listening', () => {
    const address = this.address();
    if (address && typeof address === 'object') console.log(`[loopback] listening on ${address.address}:${address.port}`);
  });
  return listen.apply(this, bound);
};

module.exports = { loopbackArgs };

if (require.main === module) {
  require(process.env.KINESIS_LOCAL_MAIN || path.join(__dirname, '..', 'node_modules', 'kinesis-local', 'main.js'));
}
