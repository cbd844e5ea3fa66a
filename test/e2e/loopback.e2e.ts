import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * CONTRACT §1: everything the local stack starts binds to 127.0.0.1. Every TCP socket
 * that a process of the stack (the emulator, Flink with the validator, the control
 * plane, and anything in their process groups) listens on, read from /proc, must be on
 * 127.0.0.1 — not 0.0.0.0, not ::, not another interface.
 */

const PIDS_FILE = process.env.FLAGSTREAM_TEST_PIDS_FILE ?? '';

interface Listener {
  address: string;
  port: number;
  inode: string;
}

/** Decodes /proc/net/tcp{,6} addresses: 32-bit words in host (little-endian) byte order. */
function decodeAddress(hex: string): string {
  const words = hex.match(/.{8}/g)!.map((w) => Buffer.from(w, 'hex').reverse());
  const bytes = Buffer.concat(words);
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return `::ffff:${[...bytes.subarray(12)].join('.')}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

function listeningSockets(): Map<string, Listener> {
  const byInode = new Map<string, Listener>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').trim().split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] !== '0A') continue; // TCP_LISTEN
      const [addr, port] = cols[1].split(':');
      byInode.set(cols[9], { address: decodeAddress(addr), port: parseInt(port, 16), inode: cols[9] });
    }
  }
  return byInode;
}

/** The process and every process in its process group (the stack starts each in its own group). */
function groupOf(pid: number): number[] {
  const members = new Set([pid]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pid) members.add(Number(entry)); // pgrp
    } catch {
      /* gone meanwhile */
    }
  }
  return [...members];
}

function socketInodes(pid: number): string[] {
  const inodes: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.push(match[1]);
    } catch {
      /* closed meanwhile */
    }
  }
  return inodes;
}

const portOf = (url: string | undefined) => (url ? Number(new URL(url).port) : undefined);

describe('the local stack listens on 127.0.0.1 only', () => {
  it('decodes /proc/net addresses', () => {
    expect(decodeAddress('0100007F')).toBe('127.0.0.1');
    expect(decodeAddress('00000000')).toBe('0.0.0.0');
    expect(decodeAddress('0000000000000000FFFF00000100007F')).toBe('::ffff:127.0.0.1');
    expect(decodeAddress('00000000000000000000000000000000')).toBe('::');
  });

  it('binds every listening socket of the emulator, Flink and the control plane to 127.0.0.1', () => {
    expect(PIDS_FILE).not.toBe('');
    const pids = JSON.parse(readFileSync(PIDS_FILE, 'utf8')) as Record<string, number>;
    expect(Object.keys(pids).sort()).toEqual(['control-plane', 'flink', 'kinesis']);
    const sockets = listeningSockets();
    const found: Record<string, Listener[]> = {};
    for (const [name, pid] of Object.entries(pids)) {
      found[name] = groupOf(pid).flatMap(socketInodes).flatMap((inode) => (sockets.has(inode) ? [sockets.get(inode)!] : []));
    }
    // Not vacuous: each process listens somewhere, and the stack's known ports are among them.
    for (const name of Object.keys(pids)) expect({ name, count: found[name].length > 0 }).toEqual({ name, count: true });
    const ports = (name: string) => found[name].map((l) => l.port);
    expect(ports('control-plane')).toContain(portOf(process.env.FLAGSTREAM_TEST_API));
    expect(ports('kinesis')).toContain(portOf(process.env.FLAGSTREAM_TEST_KINESIS));
    expect(ports('flink')).toContain(portOf(process.env.FLAGSTREAM_TEST_FLINK));

    const wrong = Object.entries(found).flatMap(([name, listeners]) =>
      listeners.filter((l) => l.address !== '127.0.0.1' && l.address !== '::ffff:127.0.0.1').map((l) => `${name} listens on ${l.address}:${l.port}`),
    );
    expect(wrong).toEqual([]);
  });
});
